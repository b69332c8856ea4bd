"""The daemon's runtime: fair scheduling, the executor that runs batches of jobs, stored results."""

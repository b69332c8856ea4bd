"""A fuzzer for the live daemon: hypothesis plans messages (values.py, fields.py, plans.py), a target sends them
to a daemon subprocess and checks every reply (target.py, counts.py), and a session runs batches (session.py).

Why in the repository: an INTERNAL reply, a dead daemon or an unanswered request is a bug; CI runs a
bounded number of frames (tests/service/test_fuzz.py) and benchmarks/fuzz.py runs 100,000.
"""

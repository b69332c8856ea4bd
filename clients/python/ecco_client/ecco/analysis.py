"""``ecco.analysis``: CCA, SVCCA, PWCCA and CKA on (neurons, tokens) arrays, with Ecco's results.

The functions are the client's own (``ecco_client.similarity``), re-exported under Ecco's module name;
they take numpy arrays or CPU tensors.
"""

from ecco_client.similarity import cca, cka, pwcca, stack_tokens, svcca

__all__ = ["cca", "cka", "pwcca", "stack_tokens", "svcca"]

"""`python -m ecco_client.lsp`: the language server over stdio (logs go to stderr)."""

from ecco_client.lsp.server import main

if __name__ == "__main__":
    main()

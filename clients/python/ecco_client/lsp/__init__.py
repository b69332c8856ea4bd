"""The Ecco language server: `python -m ecco_client.lsp` speaks LSP over stdio and explains selected
text through the daemon (commands ecco.explain and ecco.recompute, hover, diagnostics, progress).
The VS Code extension in clients/vscode starts it; any LSP editor can."""

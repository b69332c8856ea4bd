import { randomBytes } from "node:crypto";
import * as vscode from "vscode";

/** A fresh CSP nonce per page load, from the OS's cryptographic generator (hexeditor used Math.random). */
export function createNonce(): string {
  return randomBytes(18).toString("base64");
}

/**
 * The Explain panel's page. Only our two scripts, both carrying the nonce, may run; styles come from the
 * extension's files or carry the nonce (the renderer sets inline styles through the CSSOM, which CSP
 * allows); nothing may be fetched from the network.
 */
export function explainPanelHtml(webview: vscode.Webview, extensionUri: vscode.Uri, nonce: string): string {
  const asset = (...parts: string[]) => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, ...parts)).toString();
  const csp = [
    "default-src 'none'",
    `img-src ${webview.cspSource} data:`,
    `font-src ${webview.cspSource}`,
    `style-src ${webview.cspSource} 'nonce-${nonce}'`,
    `script-src 'nonce-${nonce}'`,
  ].join("; ");
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <meta http-equiv="Content-Security-Policy" content="${csp}">
  <meta name="viewport" content="width=device-width, initial-scale=1.0">
  <meta name="ecco-nonce" content="${nonce}">
  <link rel="stylesheet" href="${asset("media", "panel.css")}" nonce="${nonce}">
  <title>Ecco</title>
</head>
<body>
  <div id="ecco-message" class="ecco-panel-message" role="status" aria-live="polite">Select text and run <strong>Ecco: Explain selection</strong>.</div>
  <div id="ecco-root"></div>
  <script nonce="${nonce}" src="${asset("out", "media", "ecco-render.js")}"></script>
  <script nonce="${nonce}" src="${asset("out", "media", "panel.js")}"></script>
</body>
</html>`;
}

// Builds the bundles of clients/vscode. Usage: node esbuild.config.mjs [target...] [--watch] [--no-minify]
// Targets are named below; with none given, all are built. Each target is one esbuild build, so the
// extension (node) and the webview/renderer (browser) bundles stay separate, as in vscode-hexeditor.
import * as esbuild from "esbuild";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const watch = args.includes("--watch");
const minify = !watch && !args.includes("--no-minify");

/** One self-contained IIFE (global `EccoRender`): Jupyter output cells, exported HTML and the webview. */
const renderer = {
  entryPoints: [path.join(here, "renderer/index.ts")],
  tsconfig: path.join(here, "tsconfig.renderer.json"),
  bundle: true,
  format: "iife",
  globalName: "EccoRender",
  platform: "browser",
  target: ["es2020", "chrome100"],
  legalComments: "none",
  minify,
  sourcemap: false,
};

/** name -> list of builds; the Python package ships the first output, the extension loads the second. */
export const targets = {
  renderer: [
    { ...renderer, outfile: path.join(here, "../python/ecco_client/render/static/ecco-render.js") },
    { ...renderer, outfile: path.join(here, "out/media/ecco-render.js") },
  ],
  // The extension host (node, CommonJS; `vscode` is provided by the host).
  extension: [
    {
      entryPoints: [path.join(here, "src/extension.ts")],
      tsconfig: path.join(here, "src/tsconfig.json"),
      outfile: path.join(here, "out/extension.js"),
      bundle: true,
      format: "cjs",
      platform: "node",
      target: "node20",
      external: ["vscode"],
      minify,
      sourcemap: !minify,
    },
  ],
  // The Explain panel's glue (browser); it drives the renderer bundle loaded beside it.
  webview: [
    {
      entryPoints: [path.join(here, "media/panel.ts")],
      tsconfig: path.join(here, "media/tsconfig.json"),
      outfile: path.join(here, "out/media/panel.js"),
      bundle: true,
      format: "iife",
      platform: "browser",
      target: ["es2020", "chrome100"],
      minify,
    },
  ],
  // The end-to-end test suite, run inside the extension host by e2e/run-e2e.mjs; never packaged.
  e2e: [
    {
      entryPoints: [path.join(here, "e2e/suite/index.ts")],
      tsconfig: path.join(here, "e2e/tsconfig.json"),
      outfile: path.join(here, "out/e2e/index.js"),
      bundle: true,
      format: "cjs",
      platform: "node",
      target: "node20",
      external: ["vscode"],
      sourcemap: true,
    },
  ],
};

async function main() {
  const names = args.filter((a) => !a.startsWith("--"));
  const chosen = names.length ? names : Object.keys(targets);
  for (const name of chosen) {
    if (!(name in targets)) {
      console.error(`unknown target ${name}; known: ${Object.keys(targets).join(", ")}`);
      process.exit(2);
    }
    for (const options of targets[name]) {
      if (watch) {
        const context = await esbuild.context(options);
        await context.watch();
      } else {
        await esbuild.build(options);
      }
    }
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});

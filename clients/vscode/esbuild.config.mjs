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

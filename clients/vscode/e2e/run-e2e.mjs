#!/usr/bin/env node
// Runs the extension's end-to-end suite in a real VS Code: the VS Code server build that ships in the npm
// package code-server, with its workbench opened in headless Chromium (shared notes/vscode-e2e.md).
//
//   node e2e/run-e2e.mjs --workspace DIR [--tests out/e2e/index.js] [--screenshot PATH] [--timeout 300]
//                        [--summary PATH]
//
// It installs code-server into a cache when missing (e2e/install-code-server.sh), starts server-main.js
// in its own process group on a port the OS picks, opens the workbench with the test payload, relays
// the extension host's log, takes a screenshot when the suite ends and kills the whole group. The exit
// code is the suite's: 0 when its run() resolved. The suite asks through its log for screenshots and for
// watches of the status bar item in the DOM (statusWatch below).
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const extensionDir = path.resolve(here, "..");

function parseArgs(argv) {
  const args = { tests: path.join(extensionDir, "out/e2e/index.js"), timeout: 300, screenshot: null, summary: null };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    if (!(key in args) && key !== "workspace") throw new Error(`unknown option ${argv[i]}`);
    args[key] = argv[i + 1];
  }
  if (!args.workspace) throw new Error("--workspace DIR is required");
  args.timeout = Number(args.timeout);
  return args;
}

function log(message) {
  process.stdout.write(`[e2e ${new Date().toISOString().slice(11, 23)}] ${message}\n`);
}

/** Installs (or just finds) Node 24 and code-server; returns their paths. */
function installCodeServer() {
  const started = Date.now();
  const result = spawnSync("bash", [path.join(here, "install-code-server.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (result.status !== 0) throw new Error(`install-code-server.sh failed (${result.status}):\n${result.stdout}`);
  const value = (name) => result.stdout.match(new RegExp(`^${name}=(.*)$`, "m"))?.[1];
  const node = value("NODE");
  const serverMain = value("SERVER_MAIN");
  if (!node || !serverMain) throw new Error(`install-code-server.sh printed no paths:\n${result.stdout}`);
  return { node, serverMain, seconds: (Date.now() - started) / 1000 };
}

/** Waits until the server prints the port it listens on; rejects when it exits or the deadline passes. */
function waitForPort(child, deadlineMs) {
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(
      () => reject(new Error(`server did not listen within ${deadlineMs} ms:\n${seen}`)),
      deadlineMs,
    );
    child.stdout.on("data", (chunk) => {
      seen += chunk;
      const match = seen.match(/Extension host agent listening on (\d+)/);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${seen}`));
    });
  });
}

/**
 * Saves a screenshot of the workbench to `file` (under a temporary name, then renamed, so a reader polling
 * for the file never sees half of it), after reading the editor hover the suite left open, if any; with
 * `hover` false (the suite's "screenshot-request --no-hover FILE"), at once, and kept out of the summary's
 * `screenshot` and `visibleHover`.
 */
async function takeScreenshot(page, file, summary, hover = true) {
  try {
    if (hover) {
      const shown = page.locator(".monaco-hover:not(.hidden)").first();
      summary.visibleHover = await shown
        .waitFor({ state: "visible", timeout: 5_000 })
        .then(() => shown.innerText())
        .catch((error) => `not visible: ${error.message.split("\n")[0]}`);
      log(`visible editor hover: ${JSON.stringify(summary.visibleHover)}`);
    }
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const partial = `${file}.partial.png`;
    await page.screenshot({ path: partial });
    fs.renameSync(partial, file);
    if (hover) summary.screenshot = file;
    else (summary.otherScreenshots ??= []).push(file);
    log(`screenshot ${file}`);
  } catch (error) {
    log(`screenshot failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** The status bar item of the extension ("ecco.status"; VS Code prefixes the extension's id). */
const STATUS_ITEM = '.statusbar-item[id$="ecco.status"]';
const PERCENT = /(\d+)%/;

/**
 * Watches the extension's status bar item as the workbench draws it, between the suite's
 * `status-watch-start {"record", "screenshot"}` and `status-watch-stop RECORD` log lines: a MutationObserver
 * on the status bar records every distinct text of the item; a loop here polls it and saves a screenshot
 * the first time the item shows a percentage strictly between 0 and 100. The start is acknowledged with the
 * file `RECORD.started`; at the stop (after waiting up to 5 s for the percentage to go) the record is
 * written to RECORD, which the suite reads and asserts on.
 */
function statusWatch(page, spec) {
  let stopping = false;
  const record = { texts: [], final: null };
  const current = () =>
    page.evaluate((selector) => document.querySelector(selector)?.textContent?.trim() ?? null, STATUS_ITEM);
  const started = (async () => {
    await page.evaluate((selector) => {
      const read = () => document.querySelector(selector)?.textContent?.trim() ?? null;
      const t0 = performance.now();
      const texts = [];
      const note = () => {
        const text = read();
        if (texts.length === 0 || texts[texts.length - 1].text !== text) {
          texts.push({ t: Math.round(performance.now() - t0), text });
        }
      };
      note();
      const observer = new MutationObserver(note);
      observer.observe(document.querySelector(".part.statusbar") ?? document.body, {
        subtree: true,
        childList: true,
        characterData: true,
      });
      window.__eccoStatusWatch = { texts, observer };
    }, STATUS_ITEM);
    fs.writeFileSync(`${spec.record}.started`, "");
    log(`watching the status bar item (${await current()})`);
  })();
  const looping = started.then(async () => {
    while (!stopping && !record.screenshot) {
      const text = await current();
      const percent = Number(text?.match(PERCENT)?.[1] ?? NaN);
      if (percent > 0 && percent < 100) {
        fs.mkdirSync(path.dirname(path.resolve(spec.screenshot)), { recursive: true });
        const partial = `${spec.screenshot}.partial.png`;
        await page.screenshot({ path: partial });
        fs.renameSync(partial, spec.screenshot);
        record.screenshot = { file: spec.screenshot, before: text, after: await current() };
        log(`status bar screenshot ${spec.screenshot}: ${JSON.stringify(record.screenshot)}`);
      } else {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  });
  // A failure is reported in the record (the suite fails on it), never as an unhandled rejection here.
  const failed = looping.then(
    () => undefined,
    (error) => (record.error = error instanceof Error ? error.message : String(error)),
  );
  return {
    async stop() {
      stopping = true;
      await failed;
      if (record.error) {
        fs.writeFileSync(spec.record, JSON.stringify(record, null, 2));
        return;
      }
      const deadline = Date.now() + 5_000;
      while (PERCENT.test((await current()) ?? "") && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      record.final = await current();
      record.texts = await page.evaluate(() => {
        const watch = window.__eccoStatusWatch;
        watch.observer.disconnect();
        return watch.texts;
      });
      const partial = `${spec.record}.partial`;
      fs.writeFileSync(partial, JSON.stringify(record, null, 2));
      fs.renameSync(partial, spec.record);
      log(
        `status bar texts: ${JSON.stringify(record.texts.map((s) => s.text))}; final ${JSON.stringify(record.final)}`,
      );
    },
  };
}

/** Kills the server's whole process group (it leaves helper processes such as the file watcher). */
async function killGroup(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = new Promise((resolve) => setTimeout(() => resolve("timeout"), 5000));
  if ((await Promise.race([exited, deadline])) === "timeout") {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  const install = installCodeServer();
  log(`code-server ready (${install.seconds.toFixed(1)} s)`);

  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ecco-e2e-"));
  const xdg = (name) => {
    const dir = path.join(dataDir, name);
    fs.mkdirSync(dir, { recursive: true });
    return dir;
  };
  // Machine settings of the server: nothing reaches for the network or opens panels the test doesn't use.
  const machineSettings = path.join(dataDir, "user", "Machine", "settings.json");
  fs.mkdirSync(path.dirname(machineSettings), { recursive: true });
  fs.writeFileSync(
    machineSettings,
    JSON.stringify({
      "extensions.autoCheckUpdates": false,
      "extensions.autoUpdate": false,
      "extensions.ignoreRecommendations": true,
      "telemetry.telemetryLevel": "off",
      "workbench.enableExperiments": false,
      "workbench.startupEditor": "none",
      "chat.disableAIFeatures": true,
      "update.mode": "none",
    }),
  );
  const env = {
    ...process.env,
    XDG_CONFIG_HOME: xdg("config"),
    XDG_DATA_HOME: xdg("data"),
    XDG_CACHE_HOME: xdg("cache"),
    PATH: `${path.dirname(install.node)}:${process.env.PATH}`,
  };
  const server = spawn(
    install.node,
    [
      install.serverMain,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--without-connection-token",
      "--accept-server-license-terms",
      "--enable-smoke-test-driver",
      "--disable-telemetry",
      "--disable-workspace-trust",
      "--server-data-dir",
      dataDir,
      "--user-data-dir",
      path.join(dataDir, "user"),
      "--extensions-dir",
      path.join(dataDir, "exts"),
    ],
    { env, detached: true, stdio: ["ignore", "pipe", "pipe"] },
  );
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.once(signal, () => {
      try {
        process.kill(-server.pid, "SIGKILL");
      } catch {
        // already gone
      }
      process.exit(130);
    });
  }
  const serverLog = fs.createWriteStream(path.join(dataDir, "server.log"));
  const hostLog = fs.createWriteStream(path.join(dataDir, "host.log"));
  server.stdout.pipe(serverLog);
  server.stderr.pipe(serverLog);

  let browser;
  let shooting = Promise.resolve();
  let watching;
  let exitCode = 1;
  const summary = { installSeconds: install.seconds, dataDir, screenshot: args.screenshot };
  try {
    const port = await waitForPort(server, 60_000);
    log(`server on 127.0.0.1:${port} (data ${dataDir})`);
    const remote = (p) => `vscode-remote://127.0.0.1:${port}${path.resolve(p)}`;
    const payload = [
      ["extensionDevelopmentPath", remote(extensionDir)],
      ["extensionTestsPath", remote(args.tests)],
      ["skipWelcome", "true"],
    ];
    const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(path.resolve(args.workspace))}&payload=${encodeURIComponent(JSON.stringify(payload))}`;

    browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    });
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    let finish;
    const finished = new Promise((resolve) => (finish = resolve));
    await page.exposeFunction("codeAutomationLog", (type, logArgs) => {
      const line = (Array.isArray(logArgs) ? logArgs : [logArgs])
        .map((a) => (typeof a === "string" ? a : JSON.stringify(a)))
        .join(" ");
      hostLog.write(`${type}: ${line}\n`);
      // The workbench's own errors (gallery, auth, telemetry lookups) are noise offline: one line each.
      if (/ecco/i.test(line)) log(`host ${type}: ${line}`);
      else if (type === "error") log(`host ${type}: ${line.split("\n")[0]}`);
      const asked = line.match(/\[ecco e2e\] screenshot-request (--no-hover )?(.+)$/);
      if (asked) shooting = takeScreenshot(page, asked[2].trim(), summary, !asked[1]);
      const watchStart = line.match(/\[ecco e2e\] status-watch-start (.+)$/);
      if (watchStart) watching = statusWatch(page, JSON.parse(watchStart[1]));
      if (/\[ecco e2e\] status-watch-stop /.test(line) && watching) {
        const watch = watching;
        watching = undefined;
        shooting = shooting.then(() => watch.stop()).catch((error) => log(`status watch failed: ${error.stack}`));
      }
    });
    await page.exposeFunction("codeAutomationExit", (code) => finish(Number(code)));
    page.on("pageerror", (error) => log(`page error: ${error.message}`));
    log("opening the workbench");
    await page.goto(url);
    const timeout = new Promise((resolve) => setTimeout(() => resolve("timeout"), args.timeout * 1000));
    const outcome = await Promise.race([finished, timeout]);
    if (outcome === "timeout") {
      log(`the suite did not finish within ${args.timeout} s`);
      exitCode = 124;
    } else {
      exitCode = outcome;
    }
    await shooting;
    if (args.screenshot && !fs.existsSync(args.screenshot)) {
      // The suite failed before asking: keep what the window shows for the failure report.
      await takeScreenshot(page, args.screenshot, summary);
    }
  } catch (error) {
    log(`harness error: ${error instanceof Error ? error.stack : String(error)}`);
    exitCode = 2;
  } finally {
    await browser?.close().catch(() => undefined);
    await killGroup(server);
    serverLog.end();
    hostLog.end();
  }
  summary.exitCode = exitCode;
  summary.seconds = (Date.now() - t0) / 1000;
  if (args.summary) fs.writeFileSync(args.summary, JSON.stringify(summary, null, 2));
  log(
    `suite exit code ${exitCode} after ${summary.seconds.toFixed(1)} s; server log ${path.join(dataDir, "server.log")}`,
  );
  process.exit(exitCode);
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});

import * as vscode from "vscode";
import { logInfo } from "./logger";

/**
 * The part of the Python extension's API (ms-python.python) we use, typed here so that the extension
 * needs neither that extension nor its npm package to build or run.
 */
interface PythonEnvironmentsApi {
  getActiveEnvironmentPath(resource?: vscode.Uri): { id: string; path: string } | undefined;
  resolveEnvironment(
    environment: { id: string; path: string } | string,
  ): Promise<{ executable: { uri?: vscode.Uri } } | undefined>;
  onDidChangeActiveEnvironmentPath: vscode.Event<unknown>;
}

interface PythonExtensionApi {
  environments?: PythonEnvironmentsApi;
}

const PYTHON_EXTENSION_ID = "ms-python.python";

async function pythonApi(): Promise<PythonExtensionApi | undefined> {
  const extension = vscode.extensions.getExtension<PythonExtensionApi>(PYTHON_EXTENSION_ID);
  if (!extension) {
    return undefined;
  }
  return extension.isActive ? extension.exports : await extension.activate();
}

/**
 * The interpreter that runs the language server: the setting when set, else the Python extension's
 * active interpreter for the workspace, else `python3` from PATH.
 */
export async function resolveInterpreter(setting: string, resource?: vscode.Uri): Promise<string> {
  if (setting.trim()) {
    return setting.trim();
  }
  try {
    const environments = (await pythonApi())?.environments;
    const active = environments?.getActiveEnvironmentPath(resource);
    if (environments && active) {
      const resolved = await environments.resolveEnvironment(active);
      const executable = resolved?.executable.uri?.fsPath;
      if (executable) {
        logInfo(`Python interpreter from the Python extension: ${executable}`);
        return executable;
      }
    }
  } catch (error) {
    logInfo(`Python extension gave no interpreter (${String(error)}); using python3`);
  }
  return "python3";
}

/** Fires when the Python extension's chosen interpreter changes; a no-op without that extension. */
export async function onPythonInterpreterChanged(listener: () => void): Promise<vscode.Disposable> {
  try {
    const environments = (await pythonApi())?.environments;
    if (environments) {
      return environments.onDidChangeActiveEnvironmentPath(listener);
    }
  } catch {
    // No Python extension API: nothing to watch.
  }
  return new vscode.Disposable(() => undefined);
}

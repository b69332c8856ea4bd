import * as vscode from "vscode";
import type { ExplainOptions } from "../../shared/protocol";

export const SECTION = "ecco";

/** The settings the extension and the language server read; see package.json for what each means. */
export interface EccoSettings {
  pythonPath: string;
  daemonAddress: string;
  connectionFile: string;
  userKey: string;
  model: string;
  sshHost: string;
  attributionMethods: string[];
  probabilityThreshold: number;
  diagnosticsEnabled: boolean;
  generateTokens: number;
  contrastiveFoil: string;
}

export function readSettings(scope?: vscode.ConfigurationScope): EccoSettings {
  const config = vscode.workspace.getConfiguration(SECTION, scope);
  return {
    pythonPath: config.get<string>("pythonPath", ""),
    daemonAddress: config.get<string>("daemonAddress", "tcp://127.0.0.1:5555"),
    connectionFile: config.get<string>("connectionFile", ""),
    userKey: config.get<string>("userKey", ""),
    model: config.get<string>("model", "smollm2-135m"),
    sshHost: config.get<string>("sshHost", ""),
    attributionMethods: config.get<string[]>("attributionMethods", ["grad_x_input"]),
    probabilityThreshold: config.get<number>("probabilityThreshold", 0.01),
    diagnosticsEnabled: config.get<boolean>("diagnostics.enabled", true),
    generateTokens: config.get<number>("generateTokens", 0),
    contrastiveFoil: config.get<string>("contrastiveFoil", ""),
  };
}

export function explainOptions(settings: EccoSettings, foil = settings.contrastiveFoil): ExplainOptions {
  const options: ExplainOptions = {
    model: settings.model,
    attribution: settings.attributionMethods,
    generate: settings.generateTokens,
  };
  return foil ? { ...options, foil } : options;
}

/**
 * Settings that decide which process runs or where it connects: a change restarts the server. The others
 * are read by the server per request through workspace/configuration, so no restart is needed for them.
 */
const RESTART_SETTINGS = ["pythonPath", "daemonAddress", "connectionFile", "userKey", "sshHost", "trace.server"];

export function needsRestart(event: vscode.ConfigurationChangeEvent): boolean {
  return RESTART_SETTINGS.some((name) => event.affectsConfiguration(`${SECTION}.${name}`));
}

// Several views in one panel behind tabs (what the VS Code side panel shows for one selection).
// Every tab's view is created up front (hidden when not chosen) so streamed tokens reach them all.
import { h } from "../dom";
import type { StreamToken, TabsData } from "../types";
import { arr, DataError, obj, str } from "../validate";
import { BaseView, type View, type ViewContext } from "../view";

export type ViewMaker = (ctx: ViewContext, view: string, data: unknown) => View;

export class TabsView extends BaseView<TabsData> {
  private current = 0;
  private children: View[] = [];

  constructor(ctx: ViewContext, data: unknown, private readonly make: ViewMaker) {
    super(ctx, data);
  }

  protected check(data: unknown): TabsData {
    const d = obj(data, "data");
    const tabs = arr(d.tabs, "tabs");
    if (!tabs.length) throw new DataError("tabs must list at least one view");
    tabs.forEach((t, i) => {
      const tab = obj(t, `tabs[${i}]`);
      str(tab.title, `tabs[${i}].title`);
      str(tab.view, `tabs[${i}].view`);
      if (tab.view === "tabs") throw new DataError(`tabs[${i}].view: tabs cannot nest`);
    });
    return d as unknown as TabsData;
  }

  draw(): void {
    this.reset();
    const tabs = this.data.tabs;
    if (this.current >= tabs.length) this.current = 0;
    const bar = h("div", { role: "tablist", "aria-label": "Views" });
    const buttons: HTMLButtonElement[] = [];
    const panels: HTMLElement[] = [];
    const choose = (i: number, focus: boolean) => {
      this.current = i;
      this.ctx.tooltip.hide();
      buttons.forEach((b, j) => {
        b.setAttribute("aria-selected", String(j === i));
        b.tabIndex = j === i ? 0 : -1;
      });
      panels.forEach((p, j) => (p.hidden = j !== i));
      if (focus) buttons[i].focus();
    };
    this.children = [];
    tabs.forEach((tab, i) => {
      const button = h("button", { class: "ecco-tab", type: "button", role: "tab", "data-view": tab.view }, tab.title);
      button.addEventListener("click", () => choose(i, false));
      button.addEventListener("keydown", (event) => {
        const dir = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
        if (!dir) return;
        event.preventDefault();
        choose((i + dir + tabs.length) % tabs.length, true);
      });
      buttons.push(button);
      bar.appendChild(button);
      const panel = h("div", { class: "ecco-panel", role: "tabpanel", "data-view": tab.view });
      panels.push(panel);
      const parent = this.ctx;
      const child: ViewContext = {
        root: parent.root,
        body: panel,
        get theme() {
          return parent.theme;
        },
        tooltip: parent.tooltip,
        options: { ...parent.options, ...(tab.options ?? {}) },
        emit: (event, detail) => parent.emit(event, { ...detail, tab: i, view: tab.view }),
      };
      this.children.push(this.make(child, tab.view, tab.data));
    });
    this.ctx.body.append(bar, ...panels);
    choose(this.current, false);
  }

  /** Updates one tab's data (detail.tab from an event says which), or replaces all tabs. */
  updateTab(index: number, data: unknown): void {
    const child = this.children[index];
    if (!child) throw new DataError(`no tab ${index}`);
    child.update(data);
    this.data.tabs[index].data = data;
  }

  /** A live host could not answer tab `index`'s request: that tab says why. */
  failTab(index: number, message: string): void {
    const child = this.children[index];
    if (!child) throw new DataError(`no tab ${index}`);
    child.requestFailed?.(message);
  }

  appendToken(token: StreamToken): void {
    let reached = 0;
    for (const child of this.children) {
      if (child.appendToken) {
        child.appendToken(token);
        reached++;
      }
    }
    if (!reached) throw new DataError("no tab shows a token stream");
  }
}

// One tooltip per rendered root, shown next to the hovered or focused element.
import { clear, h } from "./dom";

export class Tooltip {
  readonly el: HTMLElement;

  constructor(private readonly root: HTMLElement) {
    this.el = h("div", { class: "ecco-tooltip", role: "tooltip", hidden: true });
    root.appendChild(this.el);
  }

  show(anchor: Element, content: Node): void {
    clear(this.el);
    this.el.appendChild(content);
    this.el.hidden = false;
    const rootBox = this.root.getBoundingClientRect();
    const box = anchor.getBoundingClientRect();
    const width = this.el.offsetWidth;
    let left = box.left - rootBox.left;
    const maxLeft = Math.max(0, this.root.clientWidth - width - 4);
    left = Math.max(0, Math.min(left, maxLeft));
    this.el.style.left = `${left}px`;
    this.el.style.top = `${box.bottom - rootBox.top + 6}px`;
  }

  hide(): void {
    this.el.hidden = true;
  }
}

/** A titled block for tooltip content. */
export function tip(title: string, ...body: (Node | string)[]): HTMLElement {
  return h("div", {}, h("div", { class: "ecco-tip-head ecco-mono" }, title), ...body);
}

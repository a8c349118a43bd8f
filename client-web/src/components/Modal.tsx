import type { ComponentChildren } from "preact";
import { Icon } from "../icons";
import { useEffect, useRef } from "preact/hooks";

/** Modal is an accessible dialog: labelled, focus moved in and trapped, Esc closes, focus restored after. */
export function Modal(props: { title: string; onClose: () => void; children: ComponentChildren; wide?: boolean }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const before = document.activeElement as HTMLElement | null;
    const el = ref.current!;
    const first = el.querySelector<HTMLElement>("[autofocus], input, textarea, select, button:not(.modal-close)");
    (first ?? el).focus();
    return () => before?.focus?.();
  }, []);
  const onKey = (e: KeyboardEvent) => {
    if (e.key === "Escape") {
      e.stopPropagation();
      props.onClose();
    } else if (e.key === "Tab") {
      const f = [...ref.current!.querySelectorAll<HTMLElement>("button, input, textarea, select, a[href], [tabindex='0']")].filter(
        (x) => !(x as HTMLButtonElement).disabled,
      );
      if (!f.length) return;
      const a = f[0];
      const z = f[f.length - 1];
      if (e.shiftKey && document.activeElement === a) {
        e.preventDefault();
        z.focus();
      } else if (!e.shiftKey && document.activeElement === z) {
        e.preventDefault();
        a.focus();
      }
    }
  };
  return (
    <div class="backdrop" onMouseDown={(e) => e.target === e.currentTarget && props.onClose()}>
      <div
        ref={ref}
        class={props.wide ? "modal wide" : "modal"}
        role="dialog"
        aria-modal="true"
        aria-labelledby="modal-title"
        tabIndex={-1}
        onKeyDown={onKey}
      >
        <div class="modal-head">
          <h2 id="modal-title">{props.title}</h2>
          <button type="button" class="icon modal-close" aria-label="Close dialog" onClick={props.onClose}>
            <Icon name="close" />
          </button>
        </div>
        {props.children}
      </div>
    </div>
  );
}

// Keyboard: `/` focuses the view's search, Esc closes the open pane, j/k move between rows, Enter
// opens the focused row (rows handle Enter themselves). Typing in a field is never intercepted.
export function onKey(e: KeyboardEvent, closePane: () => boolean): void {
  const t = e.target as HTMLElement | null;
  const typing = !!t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName));
  if (e.key === 'Escape') {
    if (typing) (t as HTMLElement).blur();
    else if (closePane()) e.preventDefault();
    return;
  }
  if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === '/') {
    const search = document.querySelector<HTMLInputElement>('main [data-search]');
    if (search) {
      e.preventDefault();
      search.focus();
      search.select();
    }
  } else if (e.key === 'j' || e.key === 'k') {
    const rows = [...document.querySelectorAll<HTMLElement>('main [data-row]')];
    if (rows.length === 0) return;
    e.preventDefault();
    const i = rows.indexOf(document.activeElement as HTMLElement);
    const next = i < 0 ? 0 : Math.max(0, Math.min(rows.length - 1, i + (e.key === 'j' ? 1 : -1)));
    rows[next].focus();
    rows[next].scrollIntoView({ block: 'nearest' });
  }
}

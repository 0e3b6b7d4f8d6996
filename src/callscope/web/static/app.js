// Every page: a select marked data-submit submits its form when changed (the language menu).
// (An external script: the content security policy allows no inline handlers.)
for (const select of document.querySelectorAll("select[data-submit]")) {
  select.addEventListener("change", () => select.form.submit());
}

// The browser's time zone, for pages that show times in it until the user chooses one.
const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
if (zone && !document.cookie.split("; ").includes(`tz=${zone}`)) {
  document.cookie = `tz=${zone}; path=/; max-age=31536000; SameSite=Lax`; // (a name needs no quoting)
}

// On a phone the list's results come first: its filters fold behind their "Filters" button
// (open on a wider screen, and where scripts do not run).
if (matchMedia("(max-width: 40rem)").matches) {
  for (const box of document.querySelectorAll("details.filter-box")) box.open = false;
}

// A refused form: the field the refusal is about is marked, described by it and focused (in a
// folded part of the page, opened) once the page's own scripts have shown its tab.
const refusal = document.querySelector("#refusal[data-control]");
if (refusal) {
  window.addEventListener("load", () => {
    const form = [...document.forms].find((f) => new URL(f.action).pathname === refusal.dataset.form);
    const field = form && form.elements.namedItem(refusal.dataset.control);
    if (!(field instanceof HTMLElement)) return;
    field.setAttribute("aria-invalid", "true");
    field.setAttribute("aria-describedby", "refusal");
    for (let up = field.closest("details"); up; up = up.parentElement.closest("details")) up.open = true;
    field.focus();
  });
}

// A table wider than the screen scrolls sideways (on a phone); with nothing in it to focus, it
// takes the focus itself, so that it can be scrolled from the keyboard.
const scrollableTables = () => {
  for (const table of document.querySelectorAll("table.list, table.metrics, table.audit")) {
    const wide = table.scrollWidth > table.clientWidth;
    if (wide && !table.querySelector("a[href], button, input, select, textarea")) table.tabIndex = 0;
    else table.removeAttribute("tabindex");
  }
};
scrollableTables();
window.addEventListener("resize", scrollableTables);

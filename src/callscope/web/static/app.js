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

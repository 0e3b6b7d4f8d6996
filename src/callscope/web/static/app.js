// Every page: a select marked data-submit submits its form when changed (the language menu).
// (An external script: the content security policy allows no inline handlers.)
for (const select of document.querySelectorAll("select[data-submit]")) {
  select.addEventListener("change", () => select.form.submit());
}

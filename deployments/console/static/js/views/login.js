import { login } from "../api.js";
import { h } from "../format.js";

export function loginView({ main, params, go, showError }, homeFor) {
  const username = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  const password = h("input", { id: "password", name: "password", type: "password",
                                autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit" }, "Log in");
  const form = h("form", { class: "login", "aria-labelledby": "login-title" },
    h("label", { for: "username" }, "Username"), username,
    h("label", { for: "password" }, "Password"), password, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const user = await login(username.value.trim(), password.value);
      go(homeFor(user));
    } catch (error) {
      showError(error);
      password.focus();
    } finally {
      submit.disabled = false;
    }
  });
  main.append(h("h1", { id: "login-title" }, "Log in"),
    params.get("expired") ? h("p", { class: "muted" }, "Your session ended. Please log in again.") : null,
    form,
    h("p", { class: "muted" }, "Drivers see their score, premium and trips; admins see the live fleet."));
  username.focus();
  return null;
}

// An OpenID provider for the single sign-on tests: the certified `oidc-provider`, with its
// development sign-in pages. Usage: node provider.mjs PORT ACCOUNTS.json CLIENTS.json
// ACCOUNTS maps a login to its claims (groups, employee_id, ...) and is read at every sign-in,
// so that a test can take someone out of a group; CLIENTS lists the registered clients.
import fs from "node:fs";
import Provider from "oidc-provider";

const [port, accountsFile, clientsFile] = process.argv.slice(2);
const claims = ["sub", "name", "email", "preferred_username", "groups", "employee_id"];

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: JSON.parse(fs.readFileSync(clientsFile, "utf8")),
  claims: { openid: ["sub"], profile: ["name", "preferred_username", "groups", "employee_id"], email: ["email"] },
  conformIdTokenClaims: false, // the claims of the scopes asked in the ID token itself
  cookies: { keys: ["callscope test provider"] },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  async findAccount(_ctx, id) {
    const found = JSON.parse(fs.readFileSync(accountsFile, "utf8"))[id];
    if (!found) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, preferred_username: id, ...found }) };
  },
  async loadExistingGrant(ctx) { // (first-party clients: no consent page)
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope("openid profile email");
    grant.addOIDCClaims(claims);
    await grant.save();
    return grant;
  },
});
provider.listen(Number(port), "127.0.0.1", () => console.log(`listening on ${port}`));

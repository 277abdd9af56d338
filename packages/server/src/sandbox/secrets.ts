/**
 * Every key and secret the sandboxes publish, in one place: the keys the fake Stripe and SendGrid
 * accept, the users sandbox's demo credentials, and the sandbox defaults of the server's inbound
 * webhook secrets. All of them are public on purpose (printed at startup, written in the docs), for
 * trying things out offline: never use any of them for anything real.
 *
 * @since 0.1.0
 */
import * as Redacted from "effect/Redacted"
import type { SandboxCredentials } from "./Auth.js"

/**
 * A well-formed Stripe test secret key that the Stripe sandbox accepts by default.
 *
 * @since 0.1.0
 * @category constants
 */
export const sandboxSecretKey = "sk_test_liaisonSandbox000000000000"

/**
 * A well-formed SendGrid API key that the SendGrid sandbox accepts by default.
 *
 * @since 0.1.0
 * @category constants
 */
export const sandboxApiKey = "SG.liaisonSandbox000000.liaisonSandboxSecret0000000000000000000000000"

/**
 * What the users sandbox's `/protected/*` routes and its token endpoint accept by default.
 *
 * @since 0.1.0
 * @category constants
 */
export const demoCredentials: SandboxCredentials = {
  bearerToken: Redacted.make("sandbox-bearer-token"),
  apiKey: { key: Redacted.make("sandbox-api-key"), in: "header", name: "X-API-Key" },
  basic: { username: "sandbox", password: Redacted.make("sandbox-password") },
  oauth2Client: { clientId: "liaison-demo", clientSecret: Redacted.make("sandbox-client-secret") },
  acceptExternalTokens: false
}

/**
 * The public half of the sandbox SendGrid key pair (base64 DER): the default of
 * `SENDGRID_WEBHOOK_PUBLIC_KEY`. Its private half is {@link sandboxSendGridPrivateKey}.
 *
 * @since 0.1.0
 * @category constants
 */
export const sandboxSendGridPublicKey =
  "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEz3du/y5Ry3TDcR/WTOzcUabogTdPMay291v+ojqQrrNWq5NghtysJVcoI0Jx8c6jF3gWJUrZFTyKc6u/VXqRZg=="

/**
 * The private half of the sandbox SendGrid key pair (base64 PKCS#8 DER), published so that anyone
 * can sign test events for a server on the sandbox default.
 *
 * @since 0.1.0
 * @category constants
 */
export const sandboxSendGridPrivateKey =
  "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQga8zw4DGHpe1L/ldEkUFFL8/Um9S9/o+fpUPi38z7jaKhRANCAATPd27/LlHLdMNxH9ZM7NxRpuiBN08xrLb3W/6iOpCus1ark2CG3KwlVygjQnHxzqMXeBYlStkVPIpzq79VepFm"

/**
 * The published demo API key: what the state-changing routes accept when `API_KEYS` is unset,
 * on loopback only (`Safety` refuses it anywhere else).
 *
 * @since 0.1.0
 * @category constants
 */
export const demoApiKey = "liaison-demo-api-key"

/**
 * The sandbox defaults of the server's inbound webhook secrets, by environment variable.
 *
 * @since 0.1.0
 * @category constants
 */
export const sandboxSecrets = {
  STRIPE_WEBHOOK_SECRET: "whsec_liaison_sandbox_stripe",
  STANDARD_WEBHOOK_SECRET: "whsec_bGlhaXNvbi1zYW5kYm94LXN0YW5kYXJkLXdlYmhvb2s=",
  GITHUB_WEBHOOK_SECRET: "liaison-sandbox-github-secret",
  SENDGRID_WEBHOOK_PUBLIC_KEY: sandboxSendGridPublicKey,
  WEBHOOK_SECRET: "liaison-sandbox-webhook-secret"
} as const

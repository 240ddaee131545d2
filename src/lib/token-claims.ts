/**
 * What the service's own JWTs carry. A leaf module (it imports only jose's types), so the
 * environment's types can name the authenticated caller's claims without importing the token
 * service.
 */
import type { JWTPayload } from "jose";

export type TokenType = "access" | "refresh";

export interface TokenClaims extends JWTPayload {
  sub: string;
  jti: string;
  iat: number;
  exp: number;
  type: TokenType;
  /** Refresh tokens only: the rotation family. */
  fam?: string;
  /** Access tokens: the session (refresh family) they belong to, so ending it ends them too. */
  sid?: string;
}

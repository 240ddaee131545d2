/**
 * A JWT checked against several keys: the current secret's first, then each previous one's
 * (lib/derived-keys.ts). Only a bad signature moves on to the next key; any other failure
 * (expired, wrong issuer or audience, malformed) is the token's own and is thrown as it is.
 */
import { errors as joseErrors, type JWTPayload, type JWTVerifyOptions, type JWTVerifyResult, jwtVerify } from "jose";

export async function jwtVerifyWithAny(token: string, keys: CryptoKey[], options: JWTVerifyOptions): Promise<JWTVerifyResult<JWTPayload>> {
  let failure: unknown = new joseErrors.JWSSignatureVerificationFailed();
  for (const key of keys) {
    try {
      return await jwtVerify(token, key, options);
    } catch (err) {
      if (!(err instanceof joseErrors.JWSSignatureVerificationFailed)) throw err;
      failure = err;
    }
  }
  throw failure;
}

/**
 * @deprecated Moved: photos to services/photos.ts, the request lifecycle to
 * services/queued-requests.ts, identification results to services/identification-requests.ts.
 * These names stay only until the last importers move.
 */
export { imageKey, imageUrl, type StoredImage, storeImages } from "./photos";

// images shrinks large photos in the browser before upload, when the user allows it, as
// Discord's client does: fewer bytes to send and store, and the inline view never needed more.

/** SHRINK_MAX is the longest side, in pixels, of an image after shrinking. */
export const SHRINK_MAX = 2560;

const SHRINKABLE = /^image\/(jpeg|png|webp)$/;

/** shrinkable tells whether shrinkImage may change a file (a JPEG, PNG or WebP image). GIFs are
 * left alone: a canvas keeps only their first frame. */
export function shrinkable(f: File): boolean {
  return SHRINKABLE.test(f.type);
}

/** shrinkImage returns the image scaled down to fit SHRINK_MAX pixels on its longest side, as
 * JPEG (for JPEG input) or WebP (keeps transparency), at quality 0.85; it returns f itself when
 * the image is small enough, does not decode, or would not get smaller. */
export async function shrinkImage(f: File, max = SHRINK_MAX): Promise<File> {
  if (!shrinkable(f)) return f;
  let bmp: ImageBitmap;
  try {
    bmp = await createImageBitmap(f);
  } catch {
    return f;
  }
  const k = Math.min(1, max / Math.max(bmp.width, bmp.height));
  if (k === 1) {
    bmp.close();
    return f;
  }
  const w = Math.max(1, Math.round(bmp.width * k));
  const h = Math.max(1, Math.round(bmp.height * k));
  const canvas = new OffscreenCanvas(w, h);
  const g = canvas.getContext("2d");
  if (!g) {
    bmp.close();
    return f;
  }
  g.imageSmoothingQuality = "high";
  g.drawImage(bmp, 0, 0, w, h);
  bmp.close();
  let blob: Blob;
  try {
    blob = await canvas.convertToBlob({ type: f.type === "image/jpeg" ? "image/jpeg" : "image/webp", quality: 0.85 });
  } catch {
    return f;
  }
  if (blob.size >= f.size) return f;
  const ext = blob.type === "image/jpeg" ? ".jpg" : blob.type === "image/webp" ? ".webp" : ".png";
  return new File([blob], f.name.replace(/\.[^./]*$/, "") + ext, { type: blob.type, lastModified: f.lastModified });
}

/** AVATAR_MAX is the longest side, in pixels, of an avatar or guild icon after shrinking. */
export const AVATAR_MAX = 256;

/** IMAGE_FIELD_MAX is the largest avatar or icon a node accepts, in bytes (MEDIA-090). */
export const IMAGE_FIELD_MAX = 10 << 20;

/** imageDataURI prepares a chosen avatar or icon as Discord's client does: a JPEG, PNG or WebP
 * is shrunk to fit AVATAR_MAX pixels (not cropped), then the result is read as the base64 data
 * URI that PATCH /users/@me and PATCH /guilds/{id} take (spec/media.md §7). GIFs are sent as they
 * are, keeping their animation. It rejects files that are not images or are too large. */
export async function imageDataURI(f: File): Promise<string> {
  if (!/^image\/(png|jpeg|gif|webp)$/.test(f.type)) throw new Error(`${f.name} is not a PNG, JPEG, GIF or WebP image.`);
  const small = await shrinkImage(f, AVATAR_MAX);
  if (small.size > IMAGE_FIELD_MAX) throw new Error(`${f.name} is larger than 10 MB.`);
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result));
    r.onerror = () => reject(new Error(`reading ${f.name}: ${r.error?.message ?? "failed"}`));
    r.readAsDataURL(small);
  });
}

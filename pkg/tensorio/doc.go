// Package tensorio reads and writes ViT token dumps: tensors of shape
// [T, D] (one image) or [N, T, D] (a shard of N images) stored as .npy,
// .npz or .safetensors files.
//
// Open returns a Source that converts one sample at a time to float32
// through a small reused buffer, so memory stays bounded whatever the file
// size. Create returns a Writer that streams samples to a temporary file
// and renames it into place on Close. Expand turns command-line globs into
// specs for Open.
//
// # Hostile input
//
// Every file is read through an io.ReaderAt and its size. Each declared
// length (header length, shape, data offsets, zip entry sizes) is checked,
// with overflow-safe products, against what the file holds and against a
// hard limit before anything is allocated: 1 MiB for a .npy header,
// 100 MB for a .safetensors header, 1<<30 values per sample. Errors name the
// file and the problem and wrap one of the sentinel errors (ErrFormat,
// ErrDType, ErrShape, ErrTruncated, ErrNotFound, ErrTooLarge). Stored npz
// entries are read in place without checking their CRC-32; deflated entries
// are streamed and their CRC-32 is checked when the last sample is read.
//
// # Element types
//
// float16, bfloat16, float32 and float64, little-endian. Big-endian data
// and Fortran-ordered .npy arrays are refused. numpy has no bfloat16 type
// code: ml_dtypes (JAX, TensorFlow) registers bfloat16 as a 2-byte void, so
// np.save writes its descr as '<V2', and PyTorch cannot export bfloat16 to
// numpy at all. This package therefore reads the descr '<V2' (and '|V2')
// as bfloat16, as Keras does for 2-byte voids, and also accepts the descr
// 'bfloat16' that a header written from str(array.dtype) holds. It writes
// '<V2', byte for byte what np.save writes. In .safetensors, bfloat16 is
// simply "BF16".
//
// # Why not an existing library
//
// codeberg.org/sbinet/npyio (formerly github.com/sbinet/npyio) reads whole
// arrays through reflection into Go slices and has no way to read one
// sample of a file through an io.ReaderAt. Its header reader allocates the
// declared header length (up to 4 GiB in a version 2.0 file) before
// checking it against anything, finds the dict keys by substring search and
// slices between their positions, which panics on headers with reordered
// or missing keys, and multiplies the shape without overflow checks. Its
// typed reader has no float16 ('<f2') case and it knows no bfloat16.
//
// github.com/nlpodyssey/safetensors validates headers carefully
// (overflow-checked sizes, contiguous non-overlapping offsets) and knows F16
// and BF16, but it reads through an io.Reader or io.ReadSeeker, leaves the
// header size limit to the caller (none by default), and loads a whole
// tensor into memory to read it; there is no bounded, per-sample access.
//
// Both formats are small, so this package parses them itself, in the
// style of the standard library's archive/zip, which it uses for .npz.
package tensorio

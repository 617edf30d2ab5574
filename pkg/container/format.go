// Package container reads and writes .ntcb files: a header, a sequence of
// checksummed blocks and a fixed-size footer that locates an index.
//
// The package frames bytes. It does not know what a token or a codec is:
// codecs are identified by a one-byte id, and chunk payloads, model blobs and
// metadata are opaque bytes. The command layer joins this package with
// pkg/codec.
//
// A Writer streams blocks to an io.Writer and writes the index and footer on
// Close; Create wraps it with an atomic, crash-safe commit to a path. A
// Reader reads through an io.ReaderAt and a size; it treats every byte as
// hostile, checks every declared length against the file size and the
// format's limits before allocating, and returns errors (never panics) on
// malformed input. Every byte of a file is covered by a CRC-32C or by a strict
// check, so a changed byte is reported either by NewReader or by Verify.
//
// The format is specified in docs/format.md and mirrored by the comment below.
package container

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

/*
Version 2 of the .ntcb format (version 1, still read, is described after it).
This comment mirrors docs/format.md; every size and offset below is a named
constant in this file. All integers are little-endian.

	<start of file>
	+--------------------------------+ 0
	| header (16 bytes)              |
	+--------------------------------+ 16
	| block                          |  chunk, model and metadata blocks,
	| block                          |  back to back, in any order
	| ...                            |
	+--------------------------------+
	| index block                    |  always the last block
	+--------------------------------+ size-28
	| footer (28 bytes)              |
	+--------------------------------+ size
	<end of file>

Header (headerSize = 16):

	off  size  field
	  0     8  magic     "\x89NTCB\r\n\x1a"                 headerMagicAt
	  8     2  version   2 (1 for version 1 files)          headerVersionAt
	 10     2  flags     must be 0                          headerFlagsAt
	 12     4  reserved  must be 0                          headerReservedAt

Block (blockOverhead = 12 bytes plus the payload):

	off  size  field
	  0     1  type      1 chunk, 2 model, 3 metadata, 4 index   blockTypeAt
	  1     1  codec     codec id (chunk, model); 0 otherwise    blockCodecAt
	  2     2  reserved  must be 0                               blockReservedAt
	  4     4  length    payload length n                        blockLengthAt
	  8     n  payload
	8+n     4  crc       CRC-32C of bytes [0, 8+n) of the block

The CRC is CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, initial value
and final XOR 0xFFFFFFFF; crc32.Checksum with crc32.Castagnoli in Go; the check
value of "123456789" is 0xE3069283). It covers the 8-byte block header and the
payload, so the type, codec id and length are protected as well as the data.

Footer (footerSize = 28), at size-28:

	off  size  field
	  0     8  index offset     file offset of the index block      footerIndexOffsetAt
	  8     4  index length     payload length of the index block   footerIndexLengthAt
	 12     2  version          same as the header                   footerVersionAt
	 14     2  reserved         must be 0                            footerReservedAt
	 16     4  crc              CRC-32C of footer bytes [0, 16)      footerCRCAt
	 20     8  magic            "\x89NTCBEND"                        footerMagicAt

Index block payload (type 4, codec 0):

	off  size  field
	  0     4  model count   M <= MaxModels                      indexModelCountAt
	  4     4  chunk count   C <= MaxChunks                      indexChunkCountAt
	  8     4  sample count  S <= MaxSamples                     indexSampleCountAt
	 12     4  reserved      must be 0                           indexReserved1At
	 16     8  metadata block offset                             indexMetaOffsetAt
	 24     4  metadata payload length <= MaxMetadataSize        indexMetaLengthAt
	 28     4  reserved      must be 0                           indexReserved2At
	 32        M model entries (modelEntrySizeV2 = 48 each):
	             0  8  block offset; 0 for an external model
	             8  4  blob length <= MaxModelSize
	            12  1  codec id (unique among models)
	            13  1  flags: bit 0 external (the blob is not in this
	                   file; it has no block); other bits 0
	            14  2  reserved, must be 0
	            16 32  SHA-256 of the blob
	           C chunk entries (chunkEntrySizeV2 = 32 each):
	             0  8  block offset
	             8  4  payload length <= MaxChunkSize
	            12  1  codec id
	            13  1  flags: bit 0 split (see below); other bits 0
	            14  2  reserved, must be 0
	            16  4  first sample: the sum of the counts of the chunks before
	            20  4  sample count, >= 1
	            24  4  head length h (split chunks; 0 otherwise)
	            28  4  head crc: CRC-32C of the block's bytes [0, 8+h): its
	                   header and the payload's head (split chunks; 0 otherwise)
	           S sample entries, in storage order (sampleEntryFixedSizeV2 = 26 + key):
	             0  4  chunk index
	             4  4  position in the chunk (sample index - chunk's first)
	             8  4  tokens <= MaxShape
	            12  4  dim    <= MaxShape
	            16  4  part length (split chunks; 0 otherwise)
	            20  4  part crc: CRC-32C of the part's bytes (split chunks; 0
	                   otherwise)
	            24  2  key length k, 1 <= k <= MaxKeyLen
	            26  k  key, UTF-8, unique in the file
	           nothing after the last sample entry

Split chunks: the payload of a split chunk is a head of h bytes followed by one
part per sample, in sample order, tiling the rest of the payload exactly. The
codec that wrote it guarantees that the head followed by the parts of any run
of consecutive samples is a valid payload of those samples, so a reader can
fetch and decode one sample without the rest of its chunk. Such a read checks
the head crc (which also covers the block header) and the crc of every part it
reads; a whole-chunk read and Verify check the block crc, and Verify the head
and part crcs as well.

Version 1 differs in three places: model entries are 16 bytes (offset 8,
length 4, codec 1, reserved 3; no external models, no hash), chunk entries
are 24 bytes (the first six fields above, the flags byte reserved), and sample
entries are 18 bytes plus the key (no part length or crc: the key length at
16, the key at 18). Version 1 chunks are never split.

Tiling rule: the header, the blocks named by the index (every chunk, every
model that is not external, the metadata block, which is always present, and
the index block) and the footer cover the file exactly, with no gap and no
overlap, and the index block ends where the footer begins. With the per-block
CRCs, the footer CRC and the strict checks of the header and footer, every
byte of a valid file is checked: changing any one byte is detected by
NewReader or by Verify.

Versioning: the version field is parsed into formatVersion, an in-memory enum
whose values are never written. A reader accepts versions in
[minSupportedVersion, maxSupportedVersion] and refuses others with
ErrUnsupportedVersion. Any change to the layout or meaning of a field bumps
the version. Flags and reserved fields must be zero unless a version gives
them a meaning, so a later version can.
*/

// Magic is the first 8 bytes of every .ntcb file. Like PNG's signature, it
// starts with a non-ASCII byte and contains CR LF, LF and ^Z, so transfers
// that strip the high bit or translate line endings are caught at open.
const Magic = "\x89NTCB\r\n\x1a"

// footerMagic is the last 8 bytes of every .ntcb file.
const footerMagic = "\x89NTCBEND"

// Header layout.
const (
	headerMagicAt    = 0
	headerVersionAt  = 8
	headerFlagsAt    = 10
	headerReservedAt = 12
	headerSize       = 16
)

// Block layout.
const (
	blockTypeAt     = 0
	blockCodecAt    = 1
	blockReservedAt = 2
	blockLengthAt   = 4
	blockHeaderSize = 8
	blockCRCSize    = 4
	// blockOverhead is the size of a block around its payload.
	blockOverhead = blockHeaderSize + blockCRCSize
)

// Block types.
const (
	blockChunk    uint8 = 1
	blockModel    uint8 = 2
	blockMetadata uint8 = 3
	blockIndex    uint8 = 4
)

// Footer layout.
const (
	footerIndexOffsetAt = 0
	footerIndexLengthAt = 8
	footerVersionAt     = 12
	footerReservedAt    = 14
	footerCRCAt         = 16
	footerMagicAt       = 20
	footerSize          = 28
)

// Index payload layout.
const (
	indexModelCountAt  = 0
	indexChunkCountAt  = 4
	indexSampleCountAt = 8
	indexReserved1At   = 12
	indexMetaOffsetAt  = 16
	indexMetaLengthAt  = 24
	indexReserved2At   = 28
	indexFixedSize     = 32

	modelEntryOffsetAt   = 0
	modelEntryLengthAt   = 8
	modelEntryCodecAt    = 12
	modelEntryReservedAt = 13 // version 1: 3 bytes
	modelEntrySize       = 16 // version 1
	// Version 2 model entries.
	modelEntryFlagsAt      = 13
	modelEntryReservedAtV2 = 14
	modelEntryHashAt       = 16
	modelEntrySizeV2       = 48

	chunkEntryOffsetAt   = 0
	chunkEntryLengthAt   = 8
	chunkEntryCodecAt    = 12
	chunkEntryReservedAt = 13 // version 1: 3 bytes
	chunkEntryFirstAt    = 16
	chunkEntryCountAt    = 20
	chunkEntrySize       = 24 // version 1
	// Version 2 chunk entries.
	chunkEntryFlagsAt      = 13
	chunkEntryReservedAtV2 = 14
	chunkEntryHeadLenAt    = 24
	chunkEntryHeadCRCAt    = 28
	chunkEntrySizeV2       = 32

	sampleEntryChunkAt   = 0
	sampleEntryPosAt     = 4
	sampleEntryTokensAt  = 8
	sampleEntryDimAt     = 12
	sampleEntryKeyLenAt  = 16 // version 1
	sampleEntryKeyAt     = 18 // version 1
	sampleEntryFixedSize = 18 // version 1
	// Version 2 sample entries.
	sampleEntryPartLenAt   = 16
	sampleEntryPartCRCAt   = 20
	sampleEntryKeyLenAtV2  = 24
	sampleEntryKeyAtV2     = 26
	sampleEntryFixedSizeV2 = 26
)

// Flag bits of version 2 entries.
const (
	modelFlagExternal uint8 = 1 << 0
	chunkFlagSplit    uint8 = 1 << 0
)

// entrySizes are the sizes of the index entries of one format version.
type entrySizes struct {
	model, chunk int
	sampleFixed  int // a sample entry without its key
	keyLenAt     int // offset of the key length in a sample entry
}

// sizes returns the index entry sizes of version v.
func (v formatVersion) sizes() entrySizes {
	if v == versionV1 {
		return entrySizes{modelEntrySize, chunkEntrySize, sampleEntryFixedSize, sampleEntryKeyLenAt}
	}
	return entrySizes{modelEntrySizeV2, chunkEntrySizeV2, sampleEntryFixedSizeV2, sampleEntryKeyLenAtV2}
}

// minFileSize is the smallest valid file: a header, an empty metadata block,
// an index block with no entries and a footer.
const minFileSize = headerSize + blockOverhead + blockOverhead + indexFixedSize + footerSize

// Hard limits. A reader checks every declared length and count against them
// (and against the file size) before allocating; a writer refuses to exceed
// them with ErrTooLarge.
const (
	// MaxChunkSize bounds a chunk payload.
	MaxChunkSize = 1 << 30
	// MaxModelSize bounds a model blob.
	MaxModelSize = 256 << 20
	// MaxMetadataSize bounds the metadata payload.
	MaxMetadataSize = 16 << 20
	// MaxIndexSize bounds the index payload. It is below 2 GiB so that
	// every length fits an int on all platforms; it also limits the
	// number of samples a file can hold in practice.
	MaxIndexSize = 1<<31 - 1
	// MaxKeyLen bounds a sample key, in bytes.
	MaxKeyLen = 1024
	// MaxSamples bounds the number of samples in a file.
	MaxSamples = 1 << 28
	// MaxChunks bounds the number of chunks in a file.
	MaxChunks = 1 << 24
	// MaxModels bounds the number of model blobs: at most one per codec id.
	MaxModels = 256
	// MaxShape bounds a sample's Tokens and Dim.
	MaxShape = 1<<31 - 1
)

// Sentinel errors. Callers test them with errors.Is; returned errors add
// context (block number, offset, path) by wrapping.
var (
	// ErrBadMagic means the data does not start with Magic: it is not an
	// .ntcb file, or it was mangled by a text-mode transfer.
	ErrBadMagic = errors.New("not an ntcb file (bad magic)")
	// ErrUnsupportedVersion means the file's format version is not one this
	// package reads.
	ErrUnsupportedVersion = errors.New("unsupported ntcb format version")
	// ErrChecksum means a block's or the footer's CRC-32C does not match.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrCorrupt means a structural inconsistency: a nonzero reserved
	// field, blocks that do not tile the file, an index that disagrees
	// with itself or with a block header.
	ErrCorrupt = errors.New("corrupt ntcb file")
	// ErrTooLarge means a length or count exceeds one of the Max limits.
	ErrTooLarge = errors.New("exceeds an ntcb format limit")
	// ErrTruncated means the file ends before a structure it declares: it
	// is shorter than the minimum, its footer is missing, or a block
	// extends past its end.
	ErrTruncated = errors.New("truncated ntcb file")
	// ErrNotFound means a key, chunk or model does not exist in the file.
	ErrNotFound = errors.New("not found")
	// ErrDuplicateKey means two samples share a key, or two models share
	// a codec id.
	ErrDuplicateKey = errors.New("duplicate key")
	// ErrInvalid means a Writer was given an argument it cannot store: an
	// empty sample list, an empty or non-UTF-8 key, a negative shape.
	ErrInvalid = errors.New("invalid argument")
	// ErrClosed means a Writer or FileWriter was used after Close, Commit
	// or Abort.
	ErrClosed = errors.New("writer already closed")
	// ErrExternalModel means a model is recorded by its hash but stored
	// outside the file: the caller finds the blob elsewhere and checks it
	// against ModelInfo.SHA256.
	ErrExternalModel = errors.New("model stored outside the file")
)

// castagnoli is the CRC-32C table used for every checksum in the format.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// le is the byte order of every integer in the format.
var le = binary.LittleEndian

// formatVersion is the in-memory form of the on-disk version field. Its
// values are never written to disk: parseVersion and onDisk translate.
type formatVersion int

const (
	versionUnknown formatVersion = iota
	versionV1
	versionV2

	minSupportedVersion = versionV1
	maxSupportedVersion = versionV2
	// writeVersion is the version a Writer produces.
	writeVersion = versionV2
)

// parseVersion maps an on-disk version number to a formatVersion, refusing
// versions outside [minSupportedVersion, maxSupportedVersion].
func parseVersion(v uint16) (formatVersion, error) {
	var fv formatVersion
	switch v {
	case 1:
		fv = versionV1
	case 2:
		fv = versionV2
	}
	if fv < minSupportedVersion || fv > maxSupportedVersion {
		return versionUnknown, fmt.Errorf("version %d (this build reads %d to %d): %w",
			v, minSupportedVersion.onDisk(), maxSupportedVersion.onDisk(), ErrUnsupportedVersion)
	}
	return fv, nil
}

// onDisk returns the version number stored in files of version v.
func (v formatVersion) onDisk() uint16 {
	switch v {
	case versionV1:
		return 1
	case versionV2:
		return 2
	}
	panic(fmt.Sprintf("container: no on-disk number for version %d", int(v)))
}

// putBlockHeader encodes a block header into b[:blockHeaderSize].
func putBlockHeader(b []byte, typ, codec uint8, length uint32) {
	b[blockTypeAt] = typ
	b[blockCodecAt] = codec
	le.PutUint16(b[blockReservedAt:], 0)
	le.PutUint32(b[blockLengthAt:], length)
}

// blockTypeName names a block type for error messages.
func blockTypeName(t uint8) string {
	switch t {
	case blockChunk:
		return "chunk"
	case blockModel:
		return "model"
	case blockMetadata:
		return "metadata"
	case blockIndex:
		return "index"
	}
	return fmt.Sprintf("type %d", t)
}

// checkBlock verifies a whole block held in b (header, payload, CRC): its
// CRC first, then that its header declares the expected type, codec and
// length. Errors carry no position; callers wrap them.
func checkBlock(b []byte, typ, codec uint8, length int) error {
	if len(b) != blockOverhead+length {
		return fmt.Errorf("block buffer is %d bytes, want %d: %w", len(b), blockOverhead+length, ErrCorrupt)
	}
	n := blockHeaderSize + length
	if got, want := crc32.Checksum(b[:n], castagnoli), le.Uint32(b[n:]); got != want {
		return fmt.Errorf("crc %#08x, stored %#08x: %w", got, want, ErrChecksum)
	}
	return checkBlockHeader(b[:blockHeaderSize], typ, codec, length)
}

// checkBlockHeader checks that a block header declares the expected type,
// codec and length, with a zero reserved field.
func checkBlockHeader(h []byte, typ, codec uint8, length int) error {
	switch {
	case h[blockTypeAt] != typ:
		return fmt.Errorf("block is a %s block, index says %s: %w",
			blockTypeName(h[blockTypeAt]), blockTypeName(typ), ErrCorrupt)
	case h[blockCodecAt] != codec:
		return fmt.Errorf("block codec %d, index says %d: %w", h[blockCodecAt], codec, ErrCorrupt)
	case le.Uint16(h[blockReservedAt:]) != 0:
		return fmt.Errorf("block reserved field %#04x: %w", le.Uint16(h[blockReservedAt:]), ErrCorrupt)
	case int64(le.Uint32(h[blockLengthAt:])) != int64(length):
		return fmt.Errorf("block length %d, index says %d: %w", le.Uint32(h[blockLengthAt:]), length, ErrCorrupt)
	}
	return nil
}

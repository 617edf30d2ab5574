package container

import (
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"unicode/utf8"
)

// ChunkInfo describes a chunk block as recorded in the index.
type ChunkInfo struct {
	// Offset is the file offset of the block (its 8-byte header).
	Offset int64
	// Length is the payload length in bytes.
	Length int
	// Codec is the id of the codec that produced the payload.
	Codec uint8
	// First is the index of the chunk's first sample; its samples are
	// First to First+Count-1.
	First int
	// Count is the number of samples in the chunk (at least 1).
	Count int
	// Split reports whether the payload is a head of Head bytes followed
	// by one part per sample, so that ReadSampleRange can read samples
	// without the rest of the chunk (format version 2).
	Split bool
	// Head is the length of a split chunk's head; 0 when not split.
	Head    int
	headCRC uint32
}

// ModelInfo describes a model block as recorded in the index.
type ModelInfo struct {
	// Codec is the id of the codec the model belongs to.
	Codec uint8
	// Offset is the file offset of the block (its 8-byte header).
	Offset int64
	// Length is the blob length in bytes.
	Length int
	// SHA256 is the blob's SHA-256, recorded by format version 2 (zero in
	// version 1 files).
	SHA256 [32]byte
	// External reports that the blob is not stored in the file: it is
	// recorded by its hash and length only (format version 2), and
	// ReadModel returns ErrExternalModel. Offset is 0.
	External bool
}

// Reader gives random access to an .ntcb file through an io.ReaderAt.
// NewReader reads and checks the header, footer, index and metadata; chunk
// and model blocks are read, and their CRCs checked, on demand.
//
// A Reader is safe for concurrent use if its io.ReaderAt is (an *os.File
// is).
type Reader struct {
	r        io.ReaderAt
	size     int64
	version  formatVersion
	models   []ModelInfo
	chunks   []ChunkInfo
	samples  []sampleEntry
	keys     map[string]int32
	metadata []byte
	metaOff  int64
	indexOff int64
	indexLen int
}

// NewReader opens the .ntcb file held in r, which is size bytes long. It
// reads the header, the footer, the index block and the metadata block, and
// never a chunk or model. It checks the file size, the magic and version,
// the footer, index and metadata CRCs, every declared length and count
// against the file size and the format's limits, and that the blocks tile
// the file exactly. Errors wrap ErrBadMagic, ErrUnsupportedVersion,
// ErrChecksum, ErrCorrupt, ErrTooLarge, ErrTruncated or ErrDuplicateKey, or
// an error from r. A length or count beyond a limit (ErrTooLarge), and a
// damaged magic in a file that ends as an .ntcb file does (ErrBadMagic),
// are ErrCorrupt too.
func NewReader(r io.ReaderAt, size int64) (*Reader, error) {
	if size < 0 {
		return nil, fmt.Errorf("negative size %d: %w", size, ErrCorrupt)
	}
	zr := &Reader{r: r, size: size}
	if err := zr.readHeader(); err != nil {
		return nil, err
	}
	if err := zr.readFooter(); err != nil {
		return nil, err
	}
	idx := make([]byte, blockOverhead+zr.indexLen)
	if err := readFull(r, idx, zr.indexOff); err != nil {
		return nil, fmt.Errorf("index block at offset %d: %w", zr.indexOff, err)
	}
	if err := checkBlock(idx, blockIndex, 0, zr.indexLen); err != nil {
		return nil, fmt.Errorf("index block at offset %d: %w", zr.indexOff, err)
	}
	metaLen, err := zr.parseIndex(idx[blockHeaderSize : blockHeaderSize+zr.indexLen])
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	if err := zr.checkTiling(metaLen); err != nil {
		return nil, err
	}
	meta := make([]byte, blockOverhead+metaLen)
	if err := readFull(r, meta, zr.metaOff); err != nil {
		return nil, fmt.Errorf("metadata block at offset %d: %w", zr.metaOff, err)
	}
	if err := checkBlock(meta, blockMetadata, 0, metaLen); err != nil {
		return nil, fmt.Errorf("metadata block at offset %d: %w", zr.metaOff, err)
	}
	if metaLen > 0 {
		zr.metadata = meta[blockHeaderSize : blockHeaderSize+metaLen : blockHeaderSize+metaLen]
	}
	return zr, nil
}

// readHeader reads and checks the file header. Data that does not start
// with Magic is ErrBadMagic even if it is shorter than a header.
func (r *Reader) readHeader() error {
	var h [headerSize]byte
	n := int(min(r.size, headerSize))
	if err := readFull(r.r, h[:n], 0); err != nil {
		return fmt.Errorf("header: %w", err)
	}
	m := min(n, len(Magic))
	if string(h[:m]) != Magic[:m] {
		if r.endsLikeNTCB() {
			return fmt.Errorf("header starts with %q, but the file ends with the footer magic: %w (%w)", h[:m], ErrBadMagic, ErrCorrupt)
		}
		return fmt.Errorf("header starts with %q: %w", h[:m], ErrBadMagic)
	}
	if r.size < minFileSize {
		return fmt.Errorf("file is %d bytes, less than the minimum %d: %w", r.size, minFileSize, ErrTruncated)
	}
	v, err := parseVersion(le.Uint16(h[headerVersionAt:]))
	if err != nil {
		return fmt.Errorf("header: %w", err)
	}
	r.version = v
	if f := le.Uint16(h[headerFlagsAt:]); f != 0 {
		return fmt.Errorf("header flags %#04x, want 0: %w", f, ErrCorrupt)
	}
	if x := le.Uint32(h[headerReservedAt:]); x != 0 {
		return fmt.Errorf("header reserved field %#08x, want 0: %w", x, ErrCorrupt)
	}
	return nil
}

// endsLikeNTCB reports whether the file ends with the footer magic: a file
// whose header magic is damaged is then a damaged .ntcb file (ErrBadMagic
// and ErrCorrupt), not some other kind of file (ErrBadMagic alone).
func (r *Reader) endsLikeNTCB() bool {
	var m [len(footerMagic)]byte
	return r.size >= int64(len(m)) && readFull(r.r, m[:], r.size-int64(len(m))) == nil && string(m[:]) == footerMagic
}

// errOverLimit is ErrTooLarge found in a file, where it is also
// ErrCorrupt: a writer never writes a length or count beyond the limits,
// so a file that holds one, checksums valid or not, is damaged.
var errOverLimit = fmt.Errorf("%w (%w)", ErrTooLarge, ErrCorrupt)

// readFooter reads and checks the footer and the index block's position.
func (r *Reader) readFooter() error {
	var f [footerSize]byte
	fo := r.size - footerSize
	if err := readFull(r.r, f[:], fo); err != nil {
		return fmt.Errorf("footer at offset %d: %w", fo, err)
	}
	if string(f[footerMagicAt:]) != footerMagic {
		return fmt.Errorf("no footer magic at offset %d (incomplete write?): %w", fo+footerMagicAt, ErrTruncated)
	}
	if got, want := crc32.Checksum(f[:footerCRCAt], castagnoli), le.Uint32(f[footerCRCAt:]); got != want {
		return fmt.Errorf("footer at offset %d: crc %#08x, stored %#08x: %w", fo, got, want, ErrChecksum)
	}
	if v := le.Uint16(f[footerVersionAt:]); v != r.version.onDisk() {
		return fmt.Errorf("footer version %d, header version %d: %w", v, r.version.onDisk(), ErrCorrupt)
	}
	if x := le.Uint16(f[footerReservedAt:]); x != 0 {
		return fmt.Errorf("footer reserved field %#04x, want 0: %w", x, ErrCorrupt)
	}
	off := le.Uint64(f[footerIndexOffsetAt:])
	length := le.Uint32(f[footerIndexLengthAt:])
	switch {
	case length > MaxIndexSize:
		return fmt.Errorf("index block of %d bytes > %d: %w", length, MaxIndexSize, errOverLimit)
	case length < indexFixedSize:
		return fmt.Errorf("index block of %d bytes < %d: %w", length, indexFixedSize, ErrCorrupt)
	case off > uint64(fo) || int64(length)+blockOverhead > fo-int64(off):
		return fmt.Errorf("index block at offset %d, %d bytes, extends past the footer at %d: %w",
			off, length, fo, ErrTruncated)
	case int64(off)+blockOverhead+int64(length) != fo:
		return fmt.Errorf("index block at offset %d, %d bytes, does not end at the footer (offset %d): %w",
			off, length, fo, ErrCorrupt)
	case int64(off) < headerSize+blockOverhead:
		return fmt.Errorf("index block at offset %d leaves no room for the metadata block: %w", off, ErrCorrupt)
	}
	r.indexOff = int64(off)
	r.indexLen = int(length)
	return nil
}

// parseIndex decodes and checks the index payload p, filling the model,
// chunk and sample tables. It returns the metadata payload length.
func (r *Reader) parseIndex(p []byte) (int, error) {
	sz := r.version.sizes()
	v2 := r.version >= versionV2
	nModels := le.Uint32(p[indexModelCountAt:])
	nChunks := le.Uint32(p[indexChunkCountAt:])
	nSamples := le.Uint32(p[indexSampleCountAt:])
	metaOff := le.Uint64(p[indexMetaOffsetAt:])
	metaLen := le.Uint32(p[indexMetaLengthAt:])
	switch {
	case le.Uint32(p[indexReserved1At:]) != 0 || le.Uint32(p[indexReserved2At:]) != 0:
		return 0, fmt.Errorf("reserved field not 0: %w", ErrCorrupt)
	case nModels > MaxModels:
		return 0, fmt.Errorf("%d models > %d: %w", nModels, MaxModels, errOverLimit)
	case nChunks > MaxChunks:
		return 0, fmt.Errorf("%d chunks > %d: %w", nChunks, MaxChunks, errOverLimit)
	case nSamples > MaxSamples:
		return 0, fmt.Errorf("%d samples > %d: %w", nSamples, MaxSamples, errOverLimit)
	case nChunks > nSamples:
		return 0, fmt.Errorf("%d chunks but only %d samples: %w", nChunks, nSamples, ErrCorrupt)
	case metaLen > MaxMetadataSize:
		return 0, fmt.Errorf("metadata of %d bytes > %d: %w", metaLen, MaxMetadataSize, errOverLimit)
	}
	// The counts are bounded above, so this cannot overflow. Checking them
	// against the index size caps every allocation below by the bytes
	// actually read.
	need := int64(indexFixedSize) + int64(nModels)*int64(sz.model) +
		int64(nChunks)*int64(sz.chunk) + int64(nSamples)*int64(sz.sampleFixed+1)
	if need > int64(len(p)) {
		return 0, fmt.Errorf("%d models, %d chunks and %d samples need at least %d bytes, index has %d: %w",
			nModels, nChunks, nSamples, need, len(p), ErrCorrupt)
	}
	if metaOff > uint64(r.size) {
		return 0, fmt.Errorf("metadata block offset %d beyond the file (%d bytes): %w", metaOff, r.size, ErrTruncated)
	}
	r.metaOff = int64(metaOff)

	pos := indexFixedSize
	r.models = make([]ModelInfo, nModels)
	for i := range r.models {
		e := p[pos : pos+sz.model]
		pos += sz.model
		off := le.Uint64(e[modelEntryOffsetAt:])
		m, err := parseModelEntry(e, v2)
		switch {
		case err != nil:
			return 0, fmt.Errorf("model %d: %w", i, err)
		case m.Length > MaxModelSize:
			return 0, fmt.Errorf("model %d (codec %d): %d bytes > %d: %w", i, m.Codec, m.Length, MaxModelSize, errOverLimit)
		case off > uint64(r.size):
			return 0, fmt.Errorf("model %d (codec %d): offset %d beyond the file (%d bytes): %w",
				i, m.Codec, off, r.size, ErrTruncated)
		case m.External && off != 0:
			return 0, fmt.Errorf("model %d (codec %d): external, with block offset %d: %w", i, m.Codec, off, ErrCorrupt)
		}
		m.Offset = int64(off)
		for _, o := range r.models[:i] {
			if o.Codec == m.Codec {
				return 0, fmt.Errorf("model %d: second model for codec %d: %w", i, m.Codec, ErrDuplicateKey)
			}
		}
		r.models[i] = m
	}

	r.chunks = make([]ChunkInfo, nChunks)
	next := uint32(0) // first sample of the next chunk
	for i := range r.chunks {
		e := p[pos : pos+sz.chunk]
		pos += sz.chunk
		off := le.Uint64(e[chunkEntryOffsetAt:])
		length := le.Uint32(e[chunkEntryLengthAt:])
		first := le.Uint32(e[chunkEntryFirstAt:])
		count := le.Uint32(e[chunkEntryCountAt:])
		var flags uint8
		var head, headCRC uint32
		if v2 {
			flags = e[chunkEntryFlagsAt]
			head = le.Uint32(e[chunkEntryHeadLenAt:])
			headCRC = le.Uint32(e[chunkEntryHeadCRCAt:])
		}
		split := flags&chunkFlagSplit != 0
		switch {
		case !v2 && (e[chunkEntryReservedAt] != 0 || e[chunkEntryReservedAt+1] != 0 || e[chunkEntryReservedAt+2] != 0),
			v2 && (flags&^chunkFlagSplit != 0 || e[chunkEntryReservedAtV2] != 0 || e[chunkEntryReservedAtV2+1] != 0):
			return 0, fmt.Errorf("chunk %d: reserved field or flag not 0: %w", i, ErrCorrupt)
		case length > MaxChunkSize:
			return 0, fmt.Errorf("chunk %d: %d bytes > %d: %w", i, length, MaxChunkSize, errOverLimit)
		case off > uint64(r.size):
			return 0, fmt.Errorf("chunk %d: offset %d beyond the file (%d bytes): %w", i, off, r.size, ErrTruncated)
		case first != next:
			return 0, fmt.Errorf("chunk %d: first sample %d, want %d: %w", i, first, next, ErrCorrupt)
		case count == 0:
			return 0, fmt.Errorf("chunk %d: no samples: %w", i, ErrCorrupt)
		case count > nSamples-first:
			return 0, fmt.Errorf("chunk %d: samples %d+%d beyond the %d samples: %w", i, first, count, nSamples, ErrCorrupt)
		case split && head > length:
			return 0, fmt.Errorf("chunk %d: head of %d bytes in a payload of %d: %w", i, head, length, ErrCorrupt)
		case !split && (head != 0 || headCRC != 0):
			return 0, fmt.Errorf("chunk %d: head length %d crc %#08x in a chunk that is not split: %w", i, head, headCRC, ErrCorrupt)
		}
		next = first + count
		r.chunks[i] = ChunkInfo{
			Offset: int64(off), Length: int(length), Codec: e[chunkEntryCodecAt],
			First: int(first), Count: int(count), Split: split, Head: int(head), headCRC: headCRC,
		}
	}
	if next != nSamples {
		return 0, fmt.Errorf("chunks hold %d samples, index declares %d: %w", next, nSamples, ErrCorrupt)
	}

	// Keys are substrings of one string holding the sample table: one
	// allocation instead of one per key.
	tab := string(p[pos:])
	tp := 0
	r.samples = make([]sampleEntry, nSamples)
	r.keys = make(map[string]int32, nSamples)
	ci := 0
	var partAt int64 // where the next part of a split chunk starts in its payload
	for i := range r.samples {
		for ci < len(r.chunks) && i >= r.chunks[ci].First+r.chunks[ci].Count {
			ci++
		}
		c := &r.chunks[ci]
		if i == c.First {
			partAt = int64(c.Head)
		}
		if len(tab)-tp < sz.sampleFixed {
			return 0, fmt.Errorf("sample %d: entry cut short at index byte %d: %w", i, pos+tp, ErrCorrupt)
		}
		e := tab[tp : tp+sz.sampleFixed]
		chunk := getUint32(e[sampleEntryChunkAt:])
		spos := getUint32(e[sampleEntryPosAt:])
		tokens := getUint32(e[sampleEntryTokensAt:])
		dim := getUint32(e[sampleEntryDimAt:])
		klen := int(e[sz.keyLenAt]) | int(e[sz.keyLenAt+1])<<8
		var partLen, partCRC uint32
		if v2 {
			partLen = getUint32(e[sampleEntryPartLenAt:])
			partCRC = getUint32(e[sampleEntryPartCRCAt:])
		}
		tp += sz.sampleFixed
		switch {
		case int64(chunk) != int64(ci) || int64(spos) != int64(i-c.First):
			return 0, fmt.Errorf("sample %d: chunk %d position %d, chunk table says chunk %d position %d: %w",
				i, chunk, spos, ci, i-c.First, ErrCorrupt)
		case tokens > MaxShape || dim > MaxShape:
			return 0, fmt.Errorf("sample %d: shape %d x %d beyond %d: %w", i, tokens, dim, MaxShape, ErrCorrupt)
		case klen > MaxKeyLen:
			return 0, fmt.Errorf("sample %d: key of %d bytes > %d: %w", i, klen, MaxKeyLen, errOverLimit)
		case klen == 0:
			return 0, fmt.Errorf("sample %d: empty key: %w", i, ErrCorrupt)
		case klen > len(tab)-tp:
			return 0, fmt.Errorf("sample %d: key of %d bytes cut short at index byte %d: %w", i, klen, pos+tp, ErrCorrupt)
		case !c.Split && (partLen != 0 || partCRC != 0):
			return 0, fmt.Errorf("sample %d: part of %d bytes in chunk %d, which is not split: %w", i, partLen, ci, ErrCorrupt)
		case int64(partLen) > int64(c.Length)-partAt:
			return 0, fmt.Errorf("sample %d: part of %d bytes at payload offset %d beyond chunk %d's %d bytes: %w",
				i, partLen, partAt, ci, c.Length, ErrCorrupt)
		}
		key := tab[tp : tp+klen]
		tp += klen
		if !utf8.ValidString(key) {
			return 0, fmt.Errorf("sample %d: key %q is not UTF-8: %w", i, key, ErrCorrupt)
		}
		if j, dup := r.keys[key]; dup {
			return 0, fmt.Errorf("samples %d and %d: key %q: %w", j, i, key, ErrDuplicateKey)
		}
		r.keys[key] = int32(i)
		r.samples[i] = sampleEntry{key: key, chunk: chunk, pos: spos, tokens: tokens, dim: dim,
			partOff: uint32(partAt), partLen: partLen, partCRC: partCRC}
		partAt += int64(partLen)
		if i == c.First+c.Count-1 && c.Split && partAt != int64(c.Length) {
			return 0, fmt.Errorf("chunk %d: head and parts cover %d of its %d bytes: %w", ci, partAt, c.Length, ErrCorrupt)
		}
	}
	if tp != len(tab) {
		return 0, fmt.Errorf("%d bytes after the last sample entry: %w", len(tab)-tp, ErrCorrupt)
	}
	return int(metaLen), nil
}

// parseModelEntry decodes one model entry of a version 1 (v2 false) or
// version 2 index, all but its offset, checking its reserved fields and
// flags.
func parseModelEntry(e []byte, v2 bool) (ModelInfo, error) {
	m := ModelInfo{Codec: e[modelEntryCodecAt], Length: int(le.Uint32(e[modelEntryLengthAt:]))}
	if !v2 {
		if e[modelEntryReservedAt] != 0 || e[modelEntryReservedAt+1] != 0 || e[modelEntryReservedAt+2] != 0 {
			return m, fmt.Errorf("reserved field not 0: %w", ErrCorrupt)
		}
		return m, nil
	}
	flags := e[modelEntryFlagsAt]
	if flags&^modelFlagExternal != 0 || e[modelEntryReservedAtV2] != 0 || e[modelEntryReservedAtV2+1] != 0 {
		return m, fmt.Errorf("reserved field or flag not 0: %w", ErrCorrupt)
	}
	m.External = flags&modelFlagExternal != 0
	copy(m.SHA256[:], e[modelEntryHashAt:modelEntryHashAt+32])
	return m, nil
}

// getUint32 decodes a little-endian uint32 from the start of s.
func getUint32(s string) uint32 {
	_ = s[3]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

// extent is a block's byte range [off, end) in the file.
type extent struct {
	off, end int64
	kind     uint8 // block type
	i        int   // chunk or model number
}

func (e extent) String() string {
	switch e.kind {
	case blockChunk:
		return fmt.Sprintf("chunk %d at offset %d", e.i, e.off)
	case blockModel:
		return fmt.Sprintf("model %d at offset %d", e.i, e.off)
	}
	return fmt.Sprintf("%s block at offset %d", blockTypeName(e.kind), e.off)
}

// checkTiling checks that the blocks named by the index lie inside the file
// and cover [headerSize, size-footerSize) exactly. Offsets are already
// known to be at most the file size, so the sums below cannot overflow.
func (r *Reader) checkTiling(metaLen int) error {
	ext := make([]extent, 0, len(r.chunks)+len(r.models)+2)
	for i, c := range r.chunks {
		ext = append(ext, extent{c.Offset, c.Offset + blockOverhead + int64(c.Length), blockChunk, i})
	}
	for i, m := range r.models {
		if !m.External {
			ext = append(ext, extent{m.Offset, m.Offset + blockOverhead + int64(m.Length), blockModel, i})
		}
	}
	ext = append(ext,
		extent{r.metaOff, r.metaOff + blockOverhead + int64(metaLen), blockMetadata, 0},
		extent{r.indexOff, r.indexOff + blockOverhead + int64(r.indexLen), blockIndex, 0})
	for _, e := range ext {
		if e.end > r.size {
			return fmt.Errorf("%v: ends at %d, past the end of the file (%d bytes): %w", e, e.end, r.size, ErrTruncated)
		}
	}
	slices.SortFunc(ext, func(a, b extent) int { return cmp.Compare(a.off, b.off) })
	at := int64(headerSize)
	for _, e := range ext {
		switch {
		case e.off > at:
			return fmt.Errorf("%v: gap of %d bytes before it: %w", e, e.off-at, ErrCorrupt)
		case e.off < at:
			return fmt.Errorf("%v: overlaps the previous block, which ends at %d: %w", e, at, ErrCorrupt)
		}
		at = e.end
	}
	if at != r.size-footerSize {
		return fmt.Errorf("blocks end at %d, footer starts at %d: %w", at, r.size-footerSize, ErrCorrupt)
	}
	return nil
}

// Version returns the file's format version number, as stored on disk.
func (r *Reader) Version() int { return int(r.version.onDisk()) }

// Size returns the file size given to NewReader.
func (r *Reader) Size() int64 { return r.size }

// NumSamples returns the number of samples in the file.
func (r *Reader) NumSamples() int { return len(r.samples) }

// Sample returns the key and shape of sample i, 0 <= i < NumSamples().
// Samples are numbered in storage order: chunk 0's samples first.
func (r *Reader) Sample(i int) SampleInfo {
	s := &r.samples[i]
	return SampleInfo{Key: s.key, Tokens: int(s.tokens), Dim: int(s.dim)}
}

// SampleChunk returns the chunk holding sample i and the sample's position
// in that chunk.
func (r *Reader) SampleChunk(i int) (chunk, pos int) {
	s := &r.samples[i]
	return int(s.chunk), int(s.pos)
}

// Lookup returns the number of the sample with the given key, or an error
// wrapping ErrNotFound.
func (r *Reader) Lookup(key string) (int, error) {
	i, ok := r.keys[key]
	if !ok {
		return 0, fmt.Errorf("key %q: %w", key, ErrNotFound)
	}
	return int(i), nil
}

// NumChunks returns the number of chunks in the file.
func (r *Reader) NumChunks() int { return len(r.chunks) }

// Chunk returns the index entry of chunk i, 0 <= i < NumChunks().
func (r *Reader) Chunk(i int) ChunkInfo { return r.chunks[i] }

// Models returns the index entries of the file's model blobs, in the order
// they were written. The slice is a copy.
func (r *Reader) Models() []ModelInfo { return slices.Clone(r.models) }

// Metadata returns the metadata payload, checked at open; nil if it is
// empty. The caller must not modify it.
func (r *Reader) Metadata() []byte { return r.metadata }

// ReadModel reads the model blob of the codec with the given id and checks
// its CRC, and in format version 2 its SHA-256. It returns an error wrapping
// ErrNotFound if the file has none, and one wrapping ErrExternalModel if the
// file records the model by its hash only.
func (r *Reader) ReadModel(codec uint8) ([]byte, error) {
	for i, m := range r.models {
		if m.Codec != codec {
			continue
		}
		if m.External {
			return nil, fmt.Errorf("model %d (codec %d, sha256 %x): %w", i, codec, m.SHA256, ErrExternalModel)
		}
		b := make([]byte, blockOverhead+m.Length)
		if err := readFull(r.r, b, m.Offset); err != nil {
			return nil, fmt.Errorf("model %d (codec %d) at offset %d: %w", i, codec, m.Offset, err)
		}
		if err := checkBlock(b, blockModel, codec, m.Length); err != nil {
			return nil, fmt.Errorf("model %d (codec %d) at offset %d: %w", i, codec, m.Offset, err)
		}
		blob := b[blockHeaderSize : blockHeaderSize+m.Length : blockHeaderSize+m.Length]
		if err := r.checkModelHash(m, blob); err != nil {
			return nil, fmt.Errorf("model %d (codec %d) at offset %d: %w", i, codec, m.Offset, err)
		}
		return blob, nil
	}
	return nil, fmt.Errorf("model for codec %d: %w", codec, ErrNotFound)
}

// ReadChunk reads chunk i's block with one ReadAt, checks its CRC and its
// header against the index, and returns the payload. If cap(buf) is at least
// the block size (payload + 12 bytes), the block is read into buf's storage
// and the payload is returned at its start, so passing the returned slice
// back in reuses the storage; otherwise a new buffer is allocated.
func (r *Reader) ReadChunk(i int, buf []byte) ([]byte, error) {
	if i < 0 || i >= len(r.chunks) {
		return nil, fmt.Errorf("chunk %d of %d: %w", i, len(r.chunks), ErrNotFound)
	}
	c := r.chunks[i]
	n := blockOverhead + c.Length
	var b []byte
	if cap(buf) >= n {
		b = buf[:n]
	} else {
		b = make([]byte, n)
	}
	if err := readFull(r.r, b, c.Offset); err != nil {
		return nil, fmt.Errorf("chunk %d at offset %d: %w", i, c.Offset, err)
	}
	if err := checkBlock(b, blockChunk, c.Codec, c.Length); err != nil {
		return nil, fmt.Errorf("chunk %d at offset %d: %w", i, c.Offset, err)
	}
	copy(b, b[blockHeaderSize:blockHeaderSize+c.Length])
	return b[:c.Length], nil
}

// verifyBufSize is the size of the buffer Verify streams blocks through.
const verifyBufSize = 1 << 20

// Verify reads every chunk and model block and checks its CRC and header,
// and checks the metadata and index blocks again. It returns the first
// error, wrapped with the block's number and offset. It holds at most one
// megabyte at a time.
func (r *Reader) Verify() error {
	largest := max(len(r.metadata), r.indexLen)
	for _, c := range r.chunks {
		largest = max(largest, c.Length)
	}
	for _, m := range r.models {
		largest = max(largest, m.Length)
	}
	buf := make([]byte, min(verifyBufSize, blockOverhead+largest))
	for i, c := range r.chunks {
		var obs blockObserver
		if c.Split {
			obs = r.splitSegments(i)
		}
		if err := r.verifyBlock(c.Offset, blockChunk, c.Codec, c.Length, buf, obs); err != nil {
			return fmt.Errorf("chunk %d at offset %d: %w", i, c.Offset, err)
		}
	}
	for i, m := range r.models {
		if m.External {
			continue
		}
		var obs blockObserver
		if r.version >= versionV2 {
			obs = &payloadHash{h: sha256.New(), want: m.SHA256}
		}
		if err := r.verifyBlock(m.Offset, blockModel, m.Codec, m.Length, buf, obs); err != nil {
			return fmt.Errorf("model %d (codec %d) at offset %d: %w", i, m.Codec, m.Offset, err)
		}
	}
	if err := r.verifyBlock(r.metaOff, blockMetadata, 0, len(r.metadata), buf, nil); err != nil {
		return fmt.Errorf("metadata block at offset %d: %w", r.metaOff, err)
	}
	if err := r.verifyBlock(r.indexOff, blockIndex, 0, r.indexLen, buf, nil); err != nil {
		return fmt.Errorf("index block at offset %d: %w", r.indexOff, err)
	}
	return nil
}

// verifyBlock checks the block at off, reading it through buf in pieces,
// and hands the block's bytes [0, 8+length) to obs, if any, for its own
// checks.
func (r *Reader) verifyBlock(off int64, typ, codec uint8, length int, buf []byte, obs blockObserver) error {
	total := blockOverhead + length
	if total <= len(buf) {
		b := buf[:total]
		if err := readFull(r.r, b, off); err != nil {
			return err
		}
		if err := checkBlock(b, typ, codec, length); err != nil {
			return err
		}
		if obs == nil {
			return nil
		}
		obs.write(b[:blockHeaderSize+length])
		return obs.done()
	}
	// len(buf) >= blockHeaderSize, so the first piece holds the header.
	var hdr [blockHeaderSize]byte
	crc := uint32(0)
	body := int64(blockHeaderSize + length)
	for at := int64(0); at < body; {
		b := buf[:min(int64(len(buf)), body-at)]
		if err := readFull(r.r, b, off+at); err != nil {
			return err
		}
		if at == 0 {
			copy(hdr[:], b)
		}
		crc = crc32.Update(crc, castagnoli, b)
		if obs != nil {
			obs.write(b)
		}
		at += int64(len(b))
	}
	var t [blockCRCSize]byte
	if err := readFull(r.r, t[:], off+body); err != nil {
		return err
	}
	if want := le.Uint32(t[:]); crc != want {
		return fmt.Errorf("crc %#08x, stored %#08x: %w", crc, want, ErrChecksum)
	}
	if err := checkBlockHeader(hdr[:], typ, codec, length); err != nil {
		return err
	}
	if obs == nil {
		return nil
	}
	return obs.done()
}

// readFull reads len(b) bytes at off. A short read is ErrTruncated.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("read %d of %d bytes at offset %d: %w", n, len(b), off, ErrTruncated)
	}
	return err
}

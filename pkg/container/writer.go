package container

import (
	"crypto/sha256"
	"fmt"
	"hash/crc32"
	"io"
	"unicode/utf8"
)

// SampleInfo describes one sample stored in a chunk: its unique key and its
// shape. The container stores the shape without interpreting it.
type SampleInfo struct {
	// Key names the sample: 1 to MaxKeyLen bytes of UTF-8, unique in a file.
	Key string
	// Tokens and Dim are the sample's shape, each in [0, MaxShape].
	Tokens, Dim int
}

// sampleEntry is a sample as stored in the index.
type sampleEntry struct {
	key        string
	chunk, pos uint32
	tokens     uint32
	dim        uint32
	// The sample's part of a split chunk: its offset in the chunk's
	// payload (derived, not stored), length and CRC; zero otherwise.
	partOff, partLen, partCRC uint32
}

// Writer streams an .ntcb file to an io.Writer: NewWriter writes the header,
// WriteModel and WriteChunk append blocks, and Close appends the metadata
// block, the index block and the footer. It keeps the index in memory (about
// 60 bytes plus the key per sample) and never seeks.
//
// A Writer is not safe for concurrent use. After a write error on the
// underlying writer, every later call returns that error; errors caused by a
// rejected argument leave the Writer usable.
type Writer struct {
	w        io.Writer
	off      int64
	err      error // sticky write error
	closed   bool
	models   []ModelInfo
	chunks   []ChunkInfo
	samples  []sampleEntry
	keys     map[string]struct{}
	indexLen int64 // size of the index payload so far
}

// NewWriter writes the file header to w and returns a Writer that appends
// blocks to it.
func NewWriter(w io.Writer) (*Writer, error) {
	zw := &Writer{
		w:        w,
		keys:     make(map[string]struct{}),
		indexLen: indexFixedSize,
	}
	var h [headerSize]byte
	copy(h[headerMagicAt:], Magic)
	le.PutUint16(h[headerVersionAt:], writeVersion.onDisk())
	le.PutUint16(h[headerFlagsAt:], 0)
	le.PutUint32(h[headerReservedAt:], 0)
	if err := zw.write(h[:]); err != nil {
		return nil, err
	}
	return zw, nil
}

// Offset returns the number of bytes written so far.
func (w *Writer) Offset() int64 { return w.off }

// WriteModel appends a model block holding blob, the fitted model of the
// codec with the given id, and records its SHA-256 in the index. A file
// holds at most one model per codec id, stored or external; a second one is
// refused with ErrDuplicateKey.
func (w *Writer) WriteModel(codec uint8, blob []byte) error {
	if err := w.checkModel(codec, len(blob)); err != nil {
		return err
	}
	off := w.off
	if err := w.writeBlock(blockModel, codec, blob); err != nil {
		return err
	}
	w.models = append(w.models, ModelInfo{Codec: codec, Offset: off, Length: len(blob), SHA256: sha256.Sum256(blob)})
	w.indexLen += modelEntrySizeV2
	return nil
}

// WriteModelRef records the model of the codec with the given id by its
// length and SHA-256 only: the blob is stored elsewhere (a model file shared
// by many files), and a reader must find it by its hash. The same limits as
// WriteModel apply.
func (w *Writer) WriteModelRef(codec uint8, length int, sha [32]byte) error {
	if err := w.checkModel(codec, length); err != nil {
		return err
	}
	if length < 0 {
		return fmt.Errorf("model for codec %d: length %d: %w", codec, length, ErrInvalid)
	}
	w.models = append(w.models, ModelInfo{Codec: codec, Length: length, SHA256: sha, External: true})
	w.indexLen += modelEntrySizeV2
	return nil
}

// checkModel checks that a model of the given length can be added.
func (w *Writer) checkModel(codec uint8, length int) error {
	if err := w.usable(); err != nil {
		return err
	}
	for _, m := range w.models {
		if m.Codec == codec {
			return fmt.Errorf("model for codec %d already written: %w", codec, ErrDuplicateKey)
		}
	}
	if length > MaxModelSize {
		return fmt.Errorf("model for codec %d: %d bytes > %d: %w", codec, length, MaxModelSize, ErrTooLarge)
	}
	if w.indexLen+modelEntrySizeV2 > MaxIndexSize {
		return fmt.Errorf("model for codec %d: index would exceed %d bytes: %w", codec, MaxIndexSize, ErrTooLarge)
	}
	return nil
}

// WriteChunk appends a chunk block: payload, produced by the codec with the
// given id, holds the listed samples in order. The sample list must not be
// empty (ErrInvalid), and keys must be unique across the file
// (ErrDuplicateKey). A refused chunk writes nothing.
func (w *Writer) WriteChunk(codec uint8, payload []byte, samples []SampleInfo) error {
	return w.writeChunk(codec, payload, -1, nil, samples)
}

// WriteSplitChunk appends a chunk block whose payload is a head of head
// bytes followed by one part per sample, parts[j] bytes for samples[j],
// tiling the payload; the codec that wrote it guarantees that the head
// followed by the parts of any run of consecutive samples is a valid
// payload of those samples (codec.Splitter). The index records the head's
// and every part's CRC so that a reader can fetch single samples
// (Reader.ReadSampleRange). Otherwise as WriteChunk.
func (w *Writer) WriteSplitChunk(codec uint8, payload []byte, head int, parts []int, samples []SampleInfo) error {
	if err := w.usable(); err != nil {
		return err
	}
	if len(parts) != len(samples) {
		return fmt.Errorf("chunk %d: %d parts for %d samples: %w", len(w.chunks), len(parts), len(samples), ErrInvalid)
	}
	at := int64(head)
	for _, n := range parts {
		if n < 0 {
			return fmt.Errorf("chunk %d: part of %d bytes: %w", len(w.chunks), n, ErrInvalid)
		}
		at += int64(n)
	}
	if head < 0 || at != int64(len(payload)) {
		return fmt.Errorf("chunk %d: head of %d bytes and parts of %d cover %d of its %d bytes: %w",
			len(w.chunks), head, at-int64(head), at, len(payload), ErrInvalid)
	}
	return w.writeChunk(codec, payload, head, parts, samples)
}

// writeChunk appends a chunk, split when head >= 0.
func (w *Writer) writeChunk(codec uint8, payload []byte, head int, parts []int, samples []SampleInfo) error {
	if err := w.usable(); err != nil {
		return err
	}
	ci := len(w.chunks)
	switch {
	case len(samples) == 0:
		return fmt.Errorf("chunk %d: no samples: %w", ci, ErrInvalid)
	case len(payload) > MaxChunkSize:
		return fmt.Errorf("chunk %d: payload %d bytes > %d: %w", ci, len(payload), MaxChunkSize, ErrTooLarge)
	case ci >= MaxChunks:
		return fmt.Errorf("chunk %d: more than %d chunks: %w", ci, MaxChunks, ErrTooLarge)
	case len(samples) > MaxSamples-len(w.samples):
		return fmt.Errorf("chunk %d: more than %d samples: %w", ci, MaxSamples, ErrTooLarge)
	}
	add := int64(chunkEntrySizeV2)
	for j, s := range samples {
		if err := checkKey(s.Key); err != nil {
			return fmt.Errorf("chunk %d sample %d: %w", ci, j, err)
		}
		if s.Tokens < 0 || s.Tokens > MaxShape || s.Dim < 0 || s.Dim > MaxShape {
			return fmt.Errorf("chunk %d sample %d (%q): shape %d x %d outside [0, %d]: %w",
				ci, j, s.Key, s.Tokens, s.Dim, MaxShape, ErrInvalid)
		}
		add += sampleEntryFixedSizeV2 + int64(len(s.Key))
	}
	if w.indexLen+add > MaxIndexSize {
		return fmt.Errorf("chunk %d: index would exceed %d bytes: %w", ci, MaxIndexSize, ErrTooLarge)
	}
	for j, s := range samples {
		if _, dup := w.keys[s.Key]; dup {
			for _, t := range samples[:j] {
				delete(w.keys, t.Key)
			}
			return fmt.Errorf("chunk %d sample %d: key %q: %w", ci, j, s.Key, ErrDuplicateKey)
		}
		w.keys[s.Key] = struct{}{}
	}

	off := w.off
	if err := w.writeBlock(blockChunk, codec, payload); err != nil {
		return err
	}
	first := len(w.samples)
	c := ChunkInfo{Offset: off, Length: len(payload), Codec: codec, First: first, Count: len(samples)}
	if head >= 0 {
		var h [blockHeaderSize]byte
		putBlockHeader(h[:], blockChunk, codec, uint32(len(payload)))
		c.Split, c.Head = true, head
		c.headCRC = crc32.Update(crc32.Update(0, castagnoli, h[:]), castagnoli, payload[:head])
	}
	w.chunks = append(w.chunks, c)
	at := head
	for j, s := range samples {
		e := sampleEntry{key: s.Key, chunk: uint32(ci), pos: uint32(j), tokens: uint32(s.Tokens), dim: uint32(s.Dim)}
		if head >= 0 {
			e.partOff, e.partLen = uint32(at), uint32(parts[j])
			e.partCRC = crc32.Checksum(payload[at:at+parts[j]], castagnoli)
			at += parts[j]
		}
		w.samples = append(w.samples, e)
	}
	w.indexLen += add
	return nil
}

// Close appends the metadata block (metadata may be empty), the index block
// and the footer. It does not close the underlying writer. Close may be
// called once; later calls, and any other method, return ErrClosed.
func (w *Writer) Close(metadata []byte) error {
	if err := w.usable(); err != nil {
		return err
	}
	if len(metadata) > MaxMetadataSize {
		return fmt.Errorf("metadata %d bytes > %d: %w", len(metadata), MaxMetadataSize, ErrTooLarge)
	}
	metaOff := w.off
	if err := w.writeBlock(blockMetadata, 0, metadata); err != nil {
		return err
	}
	idx := w.encodeIndex(metaOff, len(metadata))
	idxOff := w.off
	if err := w.writeBlock(blockIndex, 0, idx); err != nil {
		return err
	}
	var f [footerSize]byte
	le.PutUint64(f[footerIndexOffsetAt:], uint64(idxOff))
	le.PutUint32(f[footerIndexLengthAt:], uint32(len(idx)))
	le.PutUint16(f[footerVersionAt:], writeVersion.onDisk())
	le.PutUint16(f[footerReservedAt:], 0)
	le.PutUint32(f[footerCRCAt:], crc32.Checksum(f[:footerCRCAt], castagnoli))
	copy(f[footerMagicAt:], footerMagic)
	if err := w.write(f[:]); err != nil {
		return err
	}
	w.closed = true
	return nil
}

// encodeIndex builds the index payload.
func (w *Writer) encodeIndex(metaOff int64, metaLen int) []byte {
	b := make([]byte, w.indexLen)
	le.PutUint32(b[indexModelCountAt:], uint32(len(w.models)))
	le.PutUint32(b[indexChunkCountAt:], uint32(len(w.chunks)))
	le.PutUint32(b[indexSampleCountAt:], uint32(len(w.samples)))
	le.PutUint32(b[indexReserved1At:], 0)
	le.PutUint64(b[indexMetaOffsetAt:], uint64(metaOff))
	le.PutUint32(b[indexMetaLengthAt:], uint32(metaLen))
	le.PutUint32(b[indexReserved2At:], 0)
	p := indexFixedSize
	for _, m := range w.models {
		e := b[p : p+modelEntrySizeV2]
		le.PutUint64(e[modelEntryOffsetAt:], uint64(m.Offset))
		le.PutUint32(e[modelEntryLengthAt:], uint32(m.Length))
		e[modelEntryCodecAt] = m.Codec
		if m.External {
			e[modelEntryFlagsAt] = modelFlagExternal
		}
		copy(e[modelEntryHashAt:], m.SHA256[:])
		p += modelEntrySizeV2
	}
	for _, c := range w.chunks {
		e := b[p : p+chunkEntrySizeV2]
		le.PutUint64(e[chunkEntryOffsetAt:], uint64(c.Offset))
		le.PutUint32(e[chunkEntryLengthAt:], uint32(c.Length))
		e[chunkEntryCodecAt] = c.Codec
		if c.Split {
			e[chunkEntryFlagsAt] = chunkFlagSplit
		}
		le.PutUint32(e[chunkEntryFirstAt:], uint32(c.First))
		le.PutUint32(e[chunkEntryCountAt:], uint32(c.Count))
		le.PutUint32(e[chunkEntryHeadLenAt:], uint32(c.Head))
		le.PutUint32(e[chunkEntryHeadCRCAt:], c.headCRC)
		p += chunkEntrySizeV2
	}
	for _, s := range w.samples {
		e := b[p:]
		le.PutUint32(e[sampleEntryChunkAt:], s.chunk)
		le.PutUint32(e[sampleEntryPosAt:], s.pos)
		le.PutUint32(e[sampleEntryTokensAt:], s.tokens)
		le.PutUint32(e[sampleEntryDimAt:], s.dim)
		le.PutUint32(e[sampleEntryPartLenAt:], s.partLen)
		le.PutUint32(e[sampleEntryPartCRCAt:], s.partCRC)
		le.PutUint16(e[sampleEntryKeyLenAtV2:], uint16(len(s.key)))
		copy(e[sampleEntryKeyAtV2:], s.key)
		p += sampleEntryFixedSizeV2 + len(s.key)
	}
	if p != len(b) {
		panic(fmt.Sprintf("container: index size %d, computed %d", p, len(b)))
	}
	return b
}

// usable reports whether the Writer can take another call.
func (w *Writer) usable() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrClosed
	}
	return nil
}

// writeBlock writes one block: header, payload and CRC.
func (w *Writer) writeBlock(typ, codec uint8, payload []byte) error {
	var h [blockHeaderSize]byte
	putBlockHeader(h[:], typ, codec, uint32(len(payload)))
	crc := crc32.Update(crc32.Update(0, castagnoli, h[:]), castagnoli, payload)
	var t [blockCRCSize]byte
	le.PutUint32(t[:], crc)
	if err := w.write(h[:]); err != nil {
		return err
	}
	if err := w.write(payload); err != nil {
		return err
	}
	return w.write(t[:])
}

// write writes b and records a failure as the Writer's sticky error.
func (w *Writer) write(b []byte) error {
	if w.err != nil {
		return w.err
	}
	n, err := w.w.Write(b)
	w.off += int64(n)
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = fmt.Errorf("writing at offset %d: %w", w.off, err)
		return w.err
	}
	return nil
}

// checkKey validates a sample key.
func checkKey(k string) error {
	switch {
	case len(k) == 0:
		return fmt.Errorf("empty key: %w", ErrInvalid)
	case len(k) > MaxKeyLen:
		return fmt.Errorf("key of %d bytes > %d: %w", len(k), MaxKeyLen, ErrTooLarge)
	case !utf8.ValidString(k):
		return fmt.Errorf("key %q is not UTF-8: %w", k, ErrInvalid)
	}
	return nil
}

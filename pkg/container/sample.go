package container

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"hash/crc32"
)

// ChunkSplit reports whether chunk i is split into a head and one part per
// sample, so that ReadSampleRange reads only the wanted samples' bytes.
func (r *Reader) ChunkSplit(i int) bool { return r.chunks[i].Split }

// SamplePart returns the offset in its chunk's payload and the length of
// sample i's part; both are 0 for a sample of a chunk that is not split.
func (r *Reader) SamplePart(i int) (off, length int) {
	s := &r.samples[i]
	return int(s.partOff), int(s.partLen)
}

// ReadSampleRange reads the samples [first, first+n) of chunk i and returns
// a payload that holds them. For a split chunk that is the chunk's head
// followed by the samples' parts, read with at most two ReadAt calls and
// checked against the head CRC (which covers the block header too) and
// each part's CRC; the codec decodes it as a payload of n samples. For a
// chunk that is not split it is the whole payload, read and checked as by
// ReadChunk, holding all the chunk's samples. buf's storage is reused when
// it is large enough, as by ReadChunk.
func (r *Reader) ReadSampleRange(i, first, n int, buf []byte) ([]byte, error) {
	if i < 0 || i >= len(r.chunks) {
		return nil, fmt.Errorf("chunk %d of %d: %w", i, len(r.chunks), ErrNotFound)
	}
	c := r.chunks[i]
	if first < 0 || n < 1 || first > c.Count-n {
		return nil, fmt.Errorf("chunk %d: samples %d+%d outside its %d: %w", i, first, n, c.Count, ErrNotFound)
	}
	if !c.Split {
		return r.ReadChunk(i, buf)
	}
	s0, s1 := &r.samples[c.First+first], &r.samples[c.First+first+n-1]
	start, end := int(s0.partOff), int(s1.partOff+s1.partLen)
	total := blockHeaderSize + c.Head + end - start
	var b []byte
	if cap(buf) >= total {
		b = buf[:total]
	} else {
		b = make([]byte, total)
	}
	hb := blockHeaderSize + c.Head
	if start == c.Head {
		// The parts follow the head: one read.
		if err := readFull(r.r, b, c.Offset); err != nil {
			return nil, fmt.Errorf("chunk %d at offset %d: %w", i, c.Offset, err)
		}
	} else {
		if err := readFull(r.r, b[:hb], c.Offset); err != nil {
			return nil, fmt.Errorf("chunk %d at offset %d: %w", i, c.Offset, err)
		}
		if err := readFull(r.r, b[hb:], c.Offset+blockHeaderSize+int64(start)); err != nil {
			return nil, fmt.Errorf("chunk %d at offset %d, samples %d+%d: %w", i, c.Offset, first, n, err)
		}
	}
	if got := crc32.Checksum(b[:hb], castagnoli); got != c.headCRC {
		return nil, fmt.Errorf("chunk %d at offset %d: head crc %#08x, stored %#08x: %w", i, c.Offset, got, c.headCRC, ErrChecksum)
	}
	if err := checkBlockHeader(b[:blockHeaderSize], blockChunk, c.Codec, c.Length); err != nil {
		return nil, fmt.Errorf("chunk %d at offset %d: %w", i, c.Offset, err)
	}
	at := hb
	for j := c.First + first; j < c.First+first+n; j++ {
		s := &r.samples[j]
		part := b[at : at+int(s.partLen)]
		if got := crc32.Checksum(part, castagnoli); got != s.partCRC {
			return nil, fmt.Errorf("chunk %d at offset %d, sample %d (%q) at payload offset %d: part crc %#08x, stored %#08x: %w",
				i, c.Offset, j, s.key, s.partOff, got, s.partCRC, ErrChecksum)
		}
		at += len(part)
	}
	copy(b, b[blockHeaderSize:])
	return b[:total-blockHeaderSize], nil
}

// checkModelHash checks a model blob read from the file against the SHA-256
// its entry records (format version 2).
func (r *Reader) checkModelHash(m ModelInfo, blob []byte) error {
	if r.version < versionV2 {
		return nil
	}
	if sum := sha256.Sum256(blob); !bytes.Equal(sum[:], m.SHA256[:]) {
		return fmt.Errorf("sha256 %x, recorded %x: %w", sum, m.SHA256, ErrChecksum)
	}
	return nil
}

// blockObserver sees a block's bytes [0, 8+length) as Verify streams them,
// and reports what it found wrong once they are all written.
type blockObserver interface {
	write(p []byte)
	done() error
}

// payloadHash checks the SHA-256 of a block's payload (the bytes after its
// header) against the hash an index entry records.
type payloadHash struct {
	h    hash.Hash
	skip int // header bytes skipped so far
	want [32]byte
}

func (p *payloadHash) write(b []byte) {
	n := min(len(b), blockHeaderSize-p.skip)
	p.skip += n
	p.h.Write(b[n:])
}

func (p *payloadHash) done() error {
	if sum := p.h.Sum(nil); !bytes.Equal(sum, p.want[:]) {
		return fmt.Errorf("sha256 %x, recorded %x: %w", sum, p.want, ErrChecksum)
	}
	return nil
}

// segmentCRC checks the CRCs of consecutive segments of a byte stream that
// arrives in pieces: segment k covers [ends[k-1], ends[k]) (from 0 for the
// first) and must have CRC crcs[k].
type segmentCRC struct {
	ends []int64
	crcs []uint32
	k    int    // current segment
	at   int64  // stream offset of the next byte
	crc  uint32 // running CRC of the current segment
	err  error  // first mismatch
	name func(k int) string
}

// write feeds the next piece of the stream.
func (s *segmentCRC) write(p []byte) {
	for len(p) > 0 || s.k < len(s.ends) && s.at == s.ends[s.k] {
		if s.k >= len(s.ends) {
			return
		}
		n := int(min(int64(len(p)), s.ends[s.k]-s.at))
		s.crc = crc32.Update(s.crc, castagnoli, p[:n])
		p, s.at = p[n:], s.at+int64(n)
		if s.at == s.ends[s.k] {
			if s.crc != s.crcs[s.k] && s.err == nil {
				s.err = fmt.Errorf("%s: crc %#08x, stored %#08x: %w", s.name(s.k), s.crc, s.crcs[s.k], ErrChecksum)
			}
			s.k, s.crc = s.k+1, 0
		}
	}
}

// done returns the first mismatch once the whole stream is written.
func (s *segmentCRC) done() error {
	s.write(nil)
	if s.err == nil && s.k != len(s.ends) {
		s.err = fmt.Errorf("%s: not reached, stream ended at %d: %w", s.name(s.k), s.at, ErrCorrupt)
	}
	return s.err
}

// splitSegments returns the checker of chunk i's head and part CRCs over the
// block's bytes [0, 8+length), or nil when the chunk is not split.
func (r *Reader) splitSegments(i int) *segmentCRC {
	c := r.chunks[i]
	if !c.Split {
		return nil
	}
	s := &segmentCRC{
		ends: []int64{int64(blockHeaderSize + c.Head)},
		crcs: []uint32{c.headCRC},
	}
	for j := c.First; j < c.First+c.Count; j++ {
		e := &r.samples[j]
		s.ends = append(s.ends, int64(blockHeaderSize)+int64(e.partOff)+int64(e.partLen))
		s.crcs = append(s.crcs, e.partCRC)
	}
	s.name = func(k int) string {
		if k == 0 {
			return "head"
		}
		return fmt.Sprintf("sample %d (%q)", c.First+k-1, r.samples[c.First+k-1].key)
	}
	return s
}

package remote

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-99/1234", "bytes */1234", "bytes 0-99/*", "bytes 0--1/0", "bytes 18446744073709551615-1/2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cr, err := ParseContentRange(s)
		if err != nil {
			return
		}
		if cr.Unsatisfied {
			if cr.Size < 0 {
				t.Fatalf("%q: unsatisfied without a size", s)
			}
			return
		}
		if cr.Start < 0 || cr.End < cr.Start || (cr.Size >= 0 && cr.End >= cr.Size) {
			t.Fatalf("%q parsed to %+v", s, cr)
		}
	})
}

// fuzzTransport answers every request from the fuzzer's bytes: a status,
// a Content-Range, an ETag, a declared length and a body, in turn; when
// they run out it answers honestly from data.
type fuzzTransport struct {
	script []byte
	data   []byte
}

func (ft *fuzzTransport) take(n int) []byte {
	n = min(n, len(ft.script))
	b := ft.script[:n]
	ft.script = ft.script[n:]
	return b
}

func (ft *fuzzTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	h := http.Header{}
	resp := &http.Response{Header: h, Request: req, ContentLength: -1}
	if len(ft.script) < 4 {
		// Honest answer.
		start, end := int64(0), int64(len(ft.data))-1
		if r := req.Header.Get("Range"); strings.HasPrefix(r, "bytes=-") {
			n, _ := strconv.ParseInt(r[len("bytes=-"):], 10, 64)
			start = max(0, int64(len(ft.data))-n)
		} else if r != "" {
			a, b, _ := strings.Cut(strings.TrimPrefix(r, "bytes="), "-")
			start, _ = strconv.ParseInt(a, 10, 64)
			end, _ = strconv.ParseInt(b, 10, 64)
		}
		if start > end || end >= int64(len(ft.data)) {
			resp.StatusCode = http.StatusRequestedRangeNotSatisfiable
			h.Set("Content-Range", "bytes */"+strconv.Itoa(len(ft.data)))
			resp.Body = io.NopCloser(bytes.NewReader(nil))
			return resp, nil
		}
		resp.StatusCode = http.StatusPartialContent
		h.Set("Content-Range", "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(end, 10)+"/"+strconv.Itoa(len(ft.data)))
		resp.ContentLength = end - start + 1
		resp.Body = io.NopCloser(bytes.NewReader(ft.data[start : end+1]))
		return resp, nil
	}
	ctl := ft.take(4)
	statuses := []int{200, 206, 206, 206, 404, 416, 429, 500, 503, 412}
	resp.StatusCode = statuses[int(ctl[0])%len(statuses)]
	if ctl[1]&1 != 0 {
		h.Set("ETag", `"`+string(ft.take(int(ctl[1]>>4)))+`"`)
	}
	if ctl[2]&1 != 0 {
		h.Set("Content-Range", string(ft.take(int(ctl[2]>>2))))
	}
	if ctl[3]&1 != 0 {
		h.Set("Retry-After", strconv.Itoa(int(ctl[3]>>4)))
	}
	if len(ft.script) >= 2 {
		n := int(binary.LittleEndian.Uint16(ft.take(2)))
		resp.Body = io.NopCloser(bytes.NewReader(ft.take(n)))
		if ctl[3]&2 != 0 {
			resp.ContentLength = int64(n)
		}
	} else {
		resp.Body = io.NopCloser(bytes.NewReader(nil))
	}
	return resp, nil
}

// FuzzFile opens and reads a remote file through a server whose answers
// the fuzzer writes. It must never panic, and what ReadAt returns without
// an error must be the file's bytes.
func FuzzFile(f *testing.F) {
	data := randomBytes(3000, 8)
	f.Add([]byte{})
	f.Add([]byte{1, 0, 1 | 22<<2, 0, 0, 0, 'b', 'y', 't', 'e', 's', ' ', '0', '-', '9', '/', '3', '0', '0', '0'})
	f.Add([]byte{0, 0, 0, 2, 5, 0, 1, 2, 3, 4, 5})
	f.Add([]byte{6, 0, 0, 1})
	f.Fuzz(func(t *testing.T, script []byte) {
		o := &Options{Client: &http.Client{Transport: &fuzzTransport{script: script, data: data}},
			BlockSize: 512, CacheBytes: 2048, MinBackoff: time.Nanosecond, MaxBackoff: time.Nanosecond, Retries: 2}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		file, err := Open(ctx, "http://fuzz/f", o)
		if err != nil {
			return
		}
		if file.Size() != int64(len(data)) {
			// A lying server can claim another size; reads are then
			// checked against that size.
			return
		}
		for _, r := range [][2]int64{{0, 16}, {2972, 28}, {100, 1500}, {2000, 1000}} {
			buf := make([]byte, r[1])
			n, err := file.ReadAt(buf, r[0])
			if err == nil && !bytes.Equal(buf[:n], data[r[0]:r[0]+int64(n)]) {
				t.Fatalf("ReadAt(%d, %d) returned wrong bytes without an error", r[1], r[0])
			}
		}
	})
}

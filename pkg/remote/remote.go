// Package remote reads files over HTTP(S) as an io.ReaderAt, with Range
// requests, so that the readers of .ntcb files and datasets read remote
// files as they read local ones and never learn where the bytes come from.
//
// A File fetches aligned blocks (64 KiB by default) and keeps the most
// recently used ones in a cache of bounded size. Opening asks for the last
// block with a suffix range, which gives the file's size and, for a .ntcb
// file, its footer, index and metadata in one request. Transient failures
// (connection errors, 408, 425, 429, 5xx, a body cut short) are retried
// with exponential backoff and jitter, honouring Retry-After. Every
// response is checked: status 206, a Content-Range that is exactly the
// range asked for, the file's size unchanged, the same ETag as when it was
// opened, and a body of exactly that length. Nothing is allocated from a
// length the server declares: buffers are sized from the request.
//
// The bytes themselves are checked by their reader: the .ntcb container's
// CRCs, the dataset index's hashes.
package remote

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultBlockSize  = 64 << 10
	DefaultCacheBytes = 32 << 20
	DefaultRetries    = 5
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
	DefaultMaxRequest = 16 << 20
)

// Sentinel errors.
var (
	// ErrNoRange means the server answered a range request with the whole
	// file (status 200): it does not support Range requests.
	ErrNoRange = errors.New("the server does not support HTTP Range requests")
	// ErrChanged means the file changed on the server while it was read:
	// another size or ETag than when it was opened.
	ErrChanged = errors.New("remote file changed while being read")
	// ErrResponse means a response does not match its request: a wrong
	// Content-Range, a body of the wrong length, an unexpected status.
	ErrResponse = errors.New("bad HTTP response")
	// ErrTooLarge means a whole-file read (Get) found more than its limit.
	ErrTooLarge = errors.New("remote file too large")
)

// Options configure Open and Get. The zero value (or nil) means the
// defaults.
type Options struct {
	// Client makes the requests; nil means a client with a 30 s timeout
	// on connecting and on response headers (none on bodies).
	Client *http.Client
	// Header is added to every request (authorization, for example).
	Header http.Header
	// BlockSize is the unit of fetching and caching; 0 means
	// DefaultBlockSize. At least 512 bytes.
	BlockSize int
	// CacheBytes bounds the cached blocks of one File; 0 means
	// DefaultCacheBytes. The cache holds at least two blocks.
	CacheBytes int64
	// Retries is the number of retries of a request after a transient
	// failure; 0 means DefaultRetries, negative means none.
	Retries int
	// MinBackoff and MaxBackoff bound the wait before a retry, which
	// doubles from MinBackoff up to MaxBackoff (with full jitter); 0 means
	// DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// MaxRequest bounds the bytes asked for in one request (a longer read
	// takes several); 0 means DefaultMaxRequest.
	MaxRequest int
}

func (o *Options) withDefaults() Options {
	var x Options
	if o != nil {
		x = *o
	}
	if x.Client == nil {
		x.Client = defaultClient
	}
	if x.BlockSize <= 0 {
		x.BlockSize = DefaultBlockSize
	}
	x.BlockSize = max(x.BlockSize, 512)
	if x.CacheBytes <= 0 {
		x.CacheBytes = DefaultCacheBytes
	}
	switch {
	case x.Retries == 0:
		x.Retries = DefaultRetries
	case x.Retries < 0:
		x.Retries = 0
	}
	if x.MinBackoff <= 0 {
		x.MinBackoff = DefaultMinBackoff
	}
	if x.MaxBackoff <= 0 {
		x.MaxBackoff = DefaultMaxBackoff
	}
	x.MaxBackoff = max(x.MaxBackoff, x.MinBackoff)
	if x.MaxRequest <= 0 {
		x.MaxRequest = DefaultMaxRequest
	}
	x.MaxRequest = max(x.MaxRequest, x.BlockSize)
	return x
}

var defaultClient = &http.Client{Transport: &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	ForceAttemptHTTP2:     true,
	MaxIdleConnsPerHost:   16,
	IdleConnTimeout:       90 * time.Second,
	TLSHandshakeTimeout:   30 * time.Second,
	ResponseHeaderTimeout: 30 * time.Second,
}}

// IsURL reports whether s is an http:// or https:// URL.
func IsURL(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}

// Join returns the URL of name (a "/"-separated relative path of plain
// segments) under the directory URL base.
func Join(base, name string) string {
	return strings.TrimRight(base, "/") + "/" + name
}

// Stats count what a File fetched.
type Stats struct {
	// Requests counts HTTP requests, retries included; Retries the
	// retries alone.
	Requests, Retries int64
	// Bytes counts the body bytes received.
	Bytes int64
	// Hits counts blocks served from the cache.
	Hits int64
}

// File is a remote file read with Range requests. It implements
// io.ReaderAt and is safe for concurrent use; concurrent reads of the same
// block share one request.
type File struct {
	ctx  context.Context
	url  string
	o    Options
	size int64
	etag string

	mu       sync.Mutex
	lru      *list.List // of *block, most recent first
	blocks   map[int64]*list.Element
	inflight map[int64]*flight
	stats    Stats
}

type block struct {
	i    int64
	data []byte
}

type flight struct {
	done chan struct{}
	data []byte
	err  error
}

// Open opens the file at url (http or https). It sends one request, for
// the last block of the file, which gives the file's size; reads with
// ReadAt send more as needed. ctx bounds every request of the File,
// including those of later reads.
func Open(ctx context.Context, url string, o *Options) (*File, error) {
	f := &File{ctx: ctx, url: url, o: o.withDefaults(), size: -1, lru: list.New(),
		blocks: map[int64]*list.Element{}, inflight: map[int64]*flight{}}
	if err := f.openTail(); err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return f, nil
}

// Size returns the file's size in bytes.
func (f *File) Size() int64 { return f.size }

// URL returns the file's URL.
func (f *File) URL() string { return f.url }

// Stats returns what the File has fetched so far.
func (f *File) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// Close drops the cache. The File must not be used afterwards.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lru.Init()
	clear(f.blocks)
	return nil
}

func (f *File) String() string { return f.url }

// openTail fetches the last block with a suffix range and learns the size.
func (f *File) openTail() error {
	B := int64(f.o.BlockSize)
	var data []byte
	var start int64
	err := f.get("bytes=-"+strconv.FormatInt(B, 10), func(resp *http.Response) (bool, error) {
		switch resp.StatusCode {
		case http.StatusPartialContent:
			if strings.HasSuffix(resp.Header.Get("Content-Range"), "/0") {
				// An empty file (Go's http.ServeContent answers "bytes 0--1/0").
				f.size, f.etag = 0, resp.Header.Get("ETag")
				return false, nil
			}
			cr, err := ParseContentRange(resp.Header.Get("Content-Range"))
			if err != nil || cr.Unsatisfied || cr.Size < 0 || cr.End-cr.Start+1 > B || cr.End != cr.Size-1 {
				return false, fmt.Errorf("%w: suffix range answered with Content-Range %q", ErrResponse, resp.Header.Get("Content-Range"))
			}
			buf, retry, err := f.readBody(resp, cr.End-cr.Start+1)
			if err != nil {
				return retry, err
			}
			f.size, f.etag, data, start = cr.Size, resp.Header.Get("ETag"), buf, cr.Start
			return false, nil
		case http.StatusRequestedRangeNotSatisfiable:
			// An empty file has no suffix to send.
			if cr, err := ParseContentRange(resp.Header.Get("Content-Range")); err == nil && cr.Unsatisfied && cr.Size == 0 {
				f.size, f.etag = 0, resp.Header.Get("ETag")
				return false, nil
			}
			return false, fmt.Errorf("%w: status %s", ErrResponse, resp.Status)
		case http.StatusOK:
			// The server ignores Range. A file no larger than a block is
			// still fine: it is all there.
			if resp.ContentLength > B {
				return false, ErrNoRange
			}
			buf, err := io.ReadAll(io.LimitReader(resp.Body, B+1))
			f.mu.Lock()
			f.stats.Bytes += int64(len(buf))
			f.mu.Unlock()
			switch {
			case err != nil:
				return true, fmt.Errorf("body: %w", err)
			case int64(len(buf)) > B:
				return false, ErrNoRange
			case resp.ContentLength >= 0 && int64(len(buf)) != resp.ContentLength:
				return true, fmt.Errorf("body: %d of %d bytes: %w", len(buf), resp.ContentLength, io.ErrUnexpectedEOF)
			}
			f.size, f.etag, data, start = int64(len(buf)), resp.Header.Get("ETag"), buf, 0
			return false, nil
		}
		return statusError(resp)
	})
	if err != nil {
		return err
	}
	// Keep the blocks the answer covers entirely (the last one at least).
	for i := (start + B - 1) / B; i*B < f.size; i++ {
		lo, hi := i*B-start, min((i+1)*B, f.size)-start
		f.insertLocked(i, data[lo:hi])
	}
	return nil
}

// ReadAt implements io.ReaderAt.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset %d", f.url, off)
	}
	if off >= f.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), f.size)
	if end == off {
		return 0, nil
	}
	B := int64(f.o.BlockSize)
	first, last := off/B, (end-1)/B
	data := make([][]byte, last-first+1)
	var waits []*flight
	var waitIdx []int64
	var fetch []int64
	f.mu.Lock()
	for i := first; i <= last; i++ {
		if e, ok := f.blocks[i]; ok {
			f.lru.MoveToFront(e)
			data[i-first] = e.Value.(*block).data
			f.stats.Hits++
		} else if fl, ok := f.inflight[i]; ok {
			waits = append(waits, fl)
			waitIdx = append(waitIdx, i)
		} else {
			fl := &flight{done: make(chan struct{})}
			f.inflight[i] = fl
			fetch = append(fetch, i)
		}
	}
	f.mu.Unlock()
	err := f.fetchRuns(fetch, func(i int64, b []byte) { data[i-first] = b })
	for k, fl := range waits {
		select {
		case <-fl.done:
		case <-f.ctx.Done():
			return 0, fmt.Errorf("%s: %w", f.url, f.ctx.Err())
		}
		if fl.err != nil && err == nil {
			err = fl.err
		}
		data[waitIdx[k]-first] = fl.data
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for i := first; i <= last; i++ {
		b := data[i-first]
		lo := max(off, i*B) - i*B
		hi := min(end, (i+1)*B) - i*B
		if int64(len(b)) < hi {
			return n, fmt.Errorf("%s: block %d: %w", f.url, i, ErrResponse)
		}
		n += copy(p[n:], b[lo:hi])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// fetchRuns fetches the listed blocks (ascending, each registered in
// flight) in runs of consecutive blocks, at most MaxRequest bytes a
// request, caches them and ends their flights. got is called with each
// block fetched.
func (f *File) fetchRuns(idx []int64, got func(int64, []byte)) error {
	B := int64(f.o.BlockSize)
	per := int64(f.o.MaxRequest) / B
	var first error
	for s := 0; s < len(idx); {
		e := s + 1
		for e < len(idx) && idx[e] == idx[e-1]+1 && int64(e-s) < per {
			e++
		}
		run := idx[s:e]
		start := run[0] * B
		end := min((run[len(run)-1]+1)*B, f.size)
		var buf []byte
		err := first
		if err == nil {
			buf, err = f.fetch(start, end)
			if err != nil {
				err = fmt.Errorf("%s: bytes %d-%d: %w", f.url, start, end-1, err)
				first = err
			}
		}
		f.mu.Lock()
		for _, i := range run {
			fl := f.inflight[i]
			delete(f.inflight, i)
			if err != nil {
				fl.err = err
			} else {
				lo, hi := i*B-start, min((i+1)*B, f.size)-start
				fl.data = buf[lo:hi:hi]
				f.insertLocked(i, fl.data)
				got(i, fl.data)
			}
			close(fl.done)
		}
		f.mu.Unlock()
		s = e
	}
	return first
}

// insertLocked caches block i, evicting the least recently used blocks
// beyond the cache's size. f.mu is held (or f is not shared yet).
func (f *File) insertLocked(i int64, data []byte) {
	if e, ok := f.blocks[i]; ok {
		f.lru.MoveToFront(e)
		return
	}
	f.blocks[i] = f.lru.PushFront(&block{i: i, data: data})
	limit := max(2, int(f.o.CacheBytes/int64(f.o.BlockSize)))
	for f.lru.Len() > limit {
		e := f.lru.Back()
		f.lru.Remove(e)
		delete(f.blocks, e.Value.(*block).i)
	}
}

// fetch reads bytes [start, end) with a Range request, with retries.
func (f *File) fetch(start, end int64) ([]byte, error) {
	var out []byte
	err := f.get(fmt.Sprintf("bytes=%d-%d", start, end-1), func(resp *http.Response) (bool, error) {
		switch resp.StatusCode {
		case http.StatusPartialContent:
		case http.StatusOK:
			return false, ErrNoRange
		case http.StatusRequestedRangeNotSatisfiable, http.StatusPreconditionFailed:
			return false, fmt.Errorf("%w: status %s", ErrChanged, resp.Status)
		default:
			return statusError(resp)
		}
		if et := resp.Header.Get("ETag"); et != "" && f.etag != "" && et != f.etag {
			return false, fmt.Errorf("%w: ETag %s, was %s", ErrChanged, et, f.etag)
		}
		cr, err := ParseContentRange(resp.Header.Get("Content-Range"))
		switch {
		case err != nil:
			return false, err
		case cr.Unsatisfied || cr.Start != start || cr.End != end-1:
			return false, fmt.Errorf("%w: asked for bytes %d-%d, got Content-Range %q", ErrResponse, start, end-1, resp.Header.Get("Content-Range"))
		case cr.Size != f.size:
			return false, fmt.Errorf("%w: size %d, was %d", ErrChanged, cr.Size, f.size)
		}
		buf, retry, err := f.readBody(resp, end-start)
		out = buf
		return retry, err
	})
	return out, err
}

// readBody reads a body that must be exactly n bytes. A body cut short is
// transient (retry true); a longer one or a wrong Content-Length is not.
func (f *File) readBody(resp *http.Response, n int64) ([]byte, bool, error) {
	if resp.ContentLength >= 0 && resp.ContentLength != n {
		return nil, false, fmt.Errorf("%w: Content-Length %d, want %d", ErrResponse, resp.ContentLength, n)
	}
	buf := make([]byte, n)
	got, err := io.ReadFull(resp.Body, buf)
	f.mu.Lock()
	f.stats.Bytes += int64(got)
	f.mu.Unlock()
	if err != nil {
		return nil, true, fmt.Errorf("body: %d of %d bytes: %w", got, n, err)
	}
	var one [1]byte
	if m, _ := resp.Body.Read(one[:]); m > 0 {
		return nil, false, fmt.Errorf("%w: body longer than %d bytes", ErrResponse, n)
	}
	return buf, false, nil
}

// get sends GET requests for the file (with the Range header rng unless
// it is empty), with the retries of retry, and hands each response to
// handle, which says whether its failure is transient. Connection errors
// are.
func (f *File) get(rng string, handle func(*http.Response) (retry bool, err error)) error {
	return f.retry(func() (bool, error) {
		req, err := http.NewRequestWithContext(f.ctx, http.MethodGet, f.url, nil)
		if err != nil {
			return false, err
		}
		for k, vs := range f.o.Header {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		f.mu.Lock()
		f.stats.Requests++
		f.mu.Unlock()
		resp, err := f.o.Client.Do(req)
		if err != nil {
			return true, err
		}
		defer drain(resp)
		return handle(resp)
	})
}

// retry runs attempt until it succeeds, fails for good (retry false), or
// the retries run out, sleeping with exponential backoff and full jitter
// in between (at least what a Retry-After asked for).
func (f *File) retry(attempt func() (retry bool, err error)) error {
	return retryLoop(f.ctx, &f.o, func() (bool, error) {
		retry, err := attempt()
		if err != nil && retry {
			f.mu.Lock()
			f.stats.Retries++
			f.mu.Unlock()
		}
		return retry, err
	})
}

func retryLoop(ctx context.Context, o *Options, attempt func() (bool, error)) error {
	wait := o.MinBackoff
	for try := 0; ; try++ {
		retry, err := attempt()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !retry || try >= o.Retries {
			if retry {
				return fmt.Errorf("after %d tries: %w", try+1, err)
			}
			return err
		}
		d := time.Duration(rand.Int64N(int64(wait) + 1))
		var ra retryAfter
		if errors.As(err, &ra) {
			d = max(d, min(ra.d, o.MaxBackoff))
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		wait = min(2*wait, o.MaxBackoff)
	}
}

// retryAfter carries a server's Retry-After with a transient status.
type retryAfter struct {
	err error
	d   time.Duration
}

func (e retryAfter) Error() string { return e.err.Error() }
func (e retryAfter) Unwrap() error { return e.err }

// statusError turns an unexpected status into an error, and says whether
// it is transient.
func statusError(resp *http.Response) (bool, error) {
	err := fmt.Errorf("%w: status %s", ErrResponse, resp.Status)
	switch resp.StatusCode {
	case http.StatusNotFound, http.StatusGone:
		return false, fmt.Errorf("status %s: %w", resp.Status, fs.ErrNotExist)
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		if s, perr := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); perr == nil && s >= 0 {
			return true, retryAfter{err, time.Duration(min(s, 3600)) * time.Second}
		}
		return true, err
	}
	return false, err
}

// drain discards a little of what is left of a body, so that the
// connection can be reused, and closes it.
func drain(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
}

// Get reads the whole file at url (an index, a model), refusing one of
// more than limit bytes before reading it, with the retries of Options.
func Get(ctx context.Context, url string, limit int64, o *Options) ([]byte, error) {
	f := &File{ctx: ctx, url: url, o: o.withDefaults()}
	var out []byte
	err := f.get("", func(resp *http.Response) (bool, error) {
		if resp.StatusCode != http.StatusOK {
			return statusError(resp)
		}
		if resp.ContentLength > limit {
			return false, fmt.Errorf("%d bytes > %d: %w", resp.ContentLength, limit, ErrTooLarge)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		if err != nil {
			return true, fmt.Errorf("body: %w", err)
		}
		if int64(len(b)) > limit {
			return false, fmt.Errorf("more than %d bytes: %w", limit, ErrTooLarge)
		}
		if resp.ContentLength >= 0 && int64(len(b)) != resp.ContentLength {
			return true, fmt.Errorf("body: %d of %d bytes: %w", len(b), resp.ContentLength, io.ErrUnexpectedEOF)
		}
		out = b
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return out, nil
}

// ContentRange is a parsed Content-Range header: bytes Start to End
// (inclusive) of Size, Size -1 when the server does not know it.
// Unsatisfied is set for "bytes */Size".
type ContentRange struct {
	Start, End, Size int64
	Unsatisfied      bool
}

// ParseContentRange parses a Content-Range header of unit bytes
// (RFC 9110 14.4): "bytes 0-99/1234", "bytes 0-99/*" or "bytes */1234".
func ParseContentRange(s string) (ContentRange, error) {
	bad := fmt.Errorf("%w: Content-Range %q", ErrResponse, s)
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return ContentRange{}, bad
	}
	rng, size, ok := strings.Cut(rest, "/")
	if !ok {
		return ContentRange{}, bad
	}
	cr := ContentRange{Size: -1}
	if size != "*" {
		n, err := parseUint(size)
		if err != nil {
			return ContentRange{}, bad
		}
		cr.Size = n
	}
	if rng == "*" {
		if cr.Size < 0 {
			return ContentRange{}, bad
		}
		cr.Unsatisfied = true
		return cr, nil
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return ContentRange{}, bad
	}
	var err1, err2 error
	cr.Start, err1 = parseUint(a)
	cr.End, err2 = parseUint(b)
	if err1 != nil || err2 != nil || cr.End < cr.Start || (cr.Size >= 0 && cr.End >= cr.Size) {
		return ContentRange{}, bad
	}
	return cr, nil
}

// parseUint parses a decimal of at most 18 digits (no sign, no spaces).
func parseUint(s string) (int64, error) {
	if s == "" || len(s) > 18 {
		return 0, strconv.ErrSyntax
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

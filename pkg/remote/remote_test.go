package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ntc-project/ntc/internal/testhttp"
)

// server serves data at /f with Range support (http.ServeContent) and
// counts requests and body bytes; fail, when set, may answer a request
// itself instead.
type server struct {
	*httptest.Server
	data     []byte
	etag     atomic.Value
	requests atomic.Int64
	served   testhttp.Counter
	fail     func(w http.ResponseWriter, r *http.Request, n int64) bool
}

func newServer(t *testing.T, data []byte) *server {
	s := &server{data: data}
	s.etag.Store(`"v1"`)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.requests.Add(1)
		if s.fail != nil && s.fail(w, r, n) {
			return
		}
		if r.URL.Path != "/f" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", s.etag.Load().(string))
		s.served.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(s.data))
		})).ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

var fast = &Options{BlockSize: 4096, CacheBytes: 64 << 10, MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond}

func TestReadAt(t *testing.T) {
	data := randomBytes(100_000, 1)
	s := newServer(t, data)
	f, err := Open(context.Background(), s.URL+"/f", fast)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Size() != int64(len(data)) {
		t.Fatalf("size %d, want %d", f.Size(), len(data))
	}
	if st := f.Stats(); st.Requests != 1 || st.Bytes != 4096 {
		t.Errorf("open: %+v, want one request of one block", st)
	}
	r := rand.New(rand.NewPCG(2, 2))
	for range 300 {
		off := r.Int64N(int64(len(data)) + 10)
		n := r.IntN(20_000)
		buf := make([]byte, n)
		got, err := f.ReadAt(buf, off)
		want := max(0, min(int64(n), int64(len(data))-off))
		if int64(got) != want {
			t.Fatalf("ReadAt(%d, %d) = %d, want %d (%v)", n, off, got, want, err)
		}
		if int64(n) > want && !errors.Is(err, io.EOF) {
			t.Fatalf("ReadAt(%d, %d) short without EOF: %v", n, off, err)
		}
		if int64(n) == want && err != nil {
			t.Fatalf("ReadAt(%d, %d): %v", n, off, err)
		}
		if want > 0 && !bytes.Equal(buf[:got], data[off:off+want]) {
			t.Fatalf("ReadAt(%d, %d): wrong bytes", n, off)
		}
	}
	// Close waits for the handlers to return: a handler counts a body
	// write after it returns, which may be after the client has read it.
	s.Close()
	st := f.Stats()
	if st.Bytes != s.served.Load() {
		t.Errorf("stats say %d bytes, the server sent %d", st.Bytes, s.served.Load())
	}
	if st.Hits == 0 || st.Retries != 0 {
		t.Errorf("stats %+v: want cache hits and no retries", st)
	}
	f.mu.Lock()
	if n := f.lru.Len(); n > 16 {
		t.Errorf("%d blocks cached, the limit is 16", n)
	}
	f.mu.Unlock()
}

// TestReadAtConcurrent reads from many goroutines at once (run with -race):
// every read is right, and blocks asked for at once are fetched once.
func TestReadAtConcurrent(t *testing.T) {
	data := randomBytes(1<<20, 3)
	s := newServer(t, data)
	f, err := Open(context.Background(), s.URL+"/f", &Options{BlockSize: 8192, CacheBytes: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 9))
			for range 100 {
				off := r.Int64N(int64(len(data)) - 30000)
				buf := make([]byte, 1+r.IntN(30000))
				if _, err := f.ReadAt(buf, off); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(buf, data[off:off+int64(len(buf))]) {
					errs <- fmt.Errorf("wrong bytes at %d", off)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// The cache holds the whole file: nothing is fetched twice.
	if got := f.Stats().Bytes; got > int64(len(data)) {
		t.Errorf("fetched %d bytes of a %d-byte file", got, len(data))
	}
}

func TestRetries(t *testing.T) {
	data := randomBytes(50_000, 4)
	for _, tc := range []struct {
		name string
		fail func(w http.ResponseWriter, r *http.Request, n int64) bool
	}{
		{"503 with Retry-After", func(w http.ResponseWriter, r *http.Request, n int64) bool {
			if n%2 == 0 {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusServiceUnavailable)
				return true
			}
			return false
		}},
		{"429", func(w http.ResponseWriter, r *http.Request, n int64) bool {
			if n%3 == 1 {
				w.WriteHeader(http.StatusTooManyRequests)
				return true
			}
			return false
		}},
		{"body cut short", func(w http.ResponseWriter, r *http.Request, n int64) bool {
			if n%2 == 1 && r.Header.Get("Range") != "" {
				// Promise the whole range, send half, drop the connection.
				cw := &halfWriter{ResponseWriter: w}
				w.Header().Set("ETag", `"v1"`)
				http.ServeContent(cw, r, "f", time.Time{}, bytes.NewReader(data))
				if hj, ok := w.(http.Hijacker); ok {
					if c, _, err := hj.Hijack(); err == nil {
						c.Close()
					}
				}
				return true
			}
			return false
		}},
		{"connection dropped", func(w http.ResponseWriter, r *http.Request, n int64) bool {
			if n%2 == 1 {
				if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
					c.Close()
				}
				return true
			}
			return false
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, data)
			s.fail = tc.fail
			f, err := Open(context.Background(), s.URL+"/f", fast)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, len(data))
			if _, err := f.ReadAt(buf, 0); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf, data) {
				t.Fatal("wrong bytes")
			}
			if f.Stats().Retries == 0 {
				t.Error("no retries counted")
			}
		})
	}
}

// halfWriter writes half of what it is given.
type halfWriter struct{ http.ResponseWriter }

func (h *halfWriter) Write(p []byte) (int, error) {
	h.ResponseWriter.Write(p[:len(p)/2])
	if f, ok := h.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	return 0, errors.New("cut")
}

func TestRetriesRunOut(t *testing.T) {
	s := newServer(t, randomBytes(1000, 5))
	s.fail = func(w http.ResponseWriter, r *http.Request, n int64) bool {
		w.WriteHeader(http.StatusBadGateway)
		return true
	}
	o := *fast
	o.Retries = 3
	_, err := Open(context.Background(), s.URL+"/f", &o)
	if err == nil || !strings.Contains(err.Error(), "after 4 tries") || !errors.Is(err, ErrResponse) {
		t.Fatalf("err = %v, want a 502 after 4 tries", err)
	}
	if got := s.requests.Load(); got != 4 {
		t.Errorf("%d requests, want 4", got)
	}
}

func TestErrors(t *testing.T) {
	data := randomBytes(20_000, 6)
	t.Run("not found", func(t *testing.T) {
		s := newServer(t, data)
		_, err := Open(context.Background(), s.URL+"/missing", fast)
		if !errors.Is(err, fs.ErrNotExist) || s.requests.Load() != 1 {
			t.Fatalf("err = %v after %d requests, want fs.ErrNotExist after 1", err, s.requests.Load())
		}
	})
	t.Run("no range support", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write(data)
		}))
		defer srv.Close()
		if _, err := Open(context.Background(), srv.URL, fast); !errors.Is(err, ErrNoRange) {
			t.Fatalf("err = %v, want ErrNoRange", err)
		}
		// A file within one block is read whole.
		o := *fast
		o.BlockSize = 32 << 10
		f, err := Open(context.Background(), srv.URL, &o)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		if _, err := f.ReadAt(buf, 19_900); err != nil || !bytes.Equal(buf, data[19_900:]) {
			t.Fatalf("ReadAt: %v", err)
		}
	})
	t.Run("changed", func(t *testing.T) {
		s := newServer(t, data)
		f, err := Open(context.Background(), s.URL+"/f", fast)
		if err != nil {
			t.Fatal(err)
		}
		s.etag.Store(`"v2"`)
		if _, err := f.ReadAt(make([]byte, 10), 0); !errors.Is(err, ErrChanged) {
			t.Fatalf("err = %v, want ErrChanged", err)
		}
	})
	t.Run("wrong range", func(t *testing.T) {
		s := newServer(t, data)
		f, err := Open(context.Background(), s.URL+"/f", fast)
		if err != nil {
			t.Fatal(err)
		}
		s.fail = func(w http.ResponseWriter, r *http.Request, n int64) bool {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 1-4096/%d", len(data)))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(data[1:4097])
			return true
		}
		if _, err := f.ReadAt(make([]byte, 10), 0); !errors.Is(err, ErrResponse) {
			t.Fatalf("err = %v, want ErrResponse", err)
		}
		if got := s.requests.Load(); got != 2 {
			t.Errorf("%d requests: a wrong answer is not transient", got)
		}
	})
	t.Run("empty", func(t *testing.T) {
		s := newServer(t, nil)
		f, err := Open(context.Background(), s.URL+"/f", fast)
		if err != nil {
			t.Fatal(err)
		}
		if f.Size() != 0 {
			t.Fatalf("size %d", f.Size())
		}
		if _, err := f.ReadAt(make([]byte, 1), 0); err != io.EOF {
			t.Fatalf("err = %v, want EOF", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		s := newServer(t, data)
		s.fail = func(w http.ResponseWriter, r *http.Request, n int64) bool {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		o := &Options{MinBackoff: time.Second, Retries: 10}
		start := time.Now()
		if _, err := Open(ctx, s.URL+"/f", o); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the deadline", err)
		}
		if time.Since(start) > 5*time.Second {
			t.Error("the backoff did not stop at the deadline")
		}
	})
}

func TestGet(t *testing.T) {
	data := randomBytes(3000, 7)
	s := newServer(t, data)
	b, err := Get(context.Background(), s.URL+"/f", 3000, fast)
	if err != nil || !bytes.Equal(b, data) {
		t.Fatalf("Get: %v", err)
	}
	if _, err := Get(context.Background(), s.URL+"/f", 2999, fast); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if _, err := Get(context.Background(), s.URL+"/nope", 10, fast); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
}

func TestParseContentRange(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ContentRange
		ok   bool
	}{
		{"bytes 0-99/1234", ContentRange{0, 99, 1234, false}, true},
		{"bytes 5-5/6", ContentRange{5, 5, 6, false}, true},
		{"bytes 0-99/*", ContentRange{0, 99, -1, false}, true},
		{"bytes */1234", ContentRange{0, 0, 1234, true}, true},
		{"bytes 0-99/99", ContentRange{}, false},
		{"bytes 9-1/100", ContentRange{}, false},
		{"bytes -1-5/100", ContentRange{}, false},
		{"bytes +1-5/100", ContentRange{}, false},
		{"bytes 1-5/1e3", ContentRange{}, false},
		{"bytes */*", ContentRange{}, false},
		{"items 0-1/2", ContentRange{}, false},
		{"bytes 0-99999999999999999999/1", ContentRange{}, false},
		{"", ContentRange{}, false},
	} {
		got, err := ParseContentRange(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseContentRange(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

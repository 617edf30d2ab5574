// Package testhttp serves files to tests over HTTP on 127.0.0.1 and counts
// the bytes it sends.
package testhttp

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// Counter counts the body bytes a handler writes.
type Counter struct{ atomic.Int64 }

// Wrap returns h with every body byte it writes counted.
func (c *Counter) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(countingWriter{w, c}, r)
	})
}

type countingWriter struct {
	http.ResponseWriter
	c *Counter
}

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.c.Add(int64(n))
	return n, err
}

// Flush implements http.Flusher when the wrapped writer does.
func (w countingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Dir serves the files of dir (with Range support, http.FileServer) until
// the test ends, and returns the server and the count of body bytes sent.
func Dir(t testing.TB, dir string) (*httptest.Server, *Counter) {
	c := &Counter{}
	srv := httptest.NewServer(c.Wrap(http.FileServer(http.Dir(dir))))
	t.Cleanup(srv.Close)
	return srv, c
}

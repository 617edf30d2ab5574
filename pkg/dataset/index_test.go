package dataset

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ntc-project/ntc/pkg/codec"
)

const (
	hashA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	hashB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func validIndex() *Index {
	return &Index{
		Format: FormatName, Version: Version, Tool: "ntc test", Codec: "ntc", DType: "float16",
		Layout:  codec.Layout{Tokens: 5, Dim: 4, Prefix: 1, GridH: 2, GridW: 2},
		Samples: 3,
		Models:  []Model{{File: File{Name: "model.ntcm", Bytes: 900, SHA256: hashA}, Codec: "ntc", ModelSHA256: hashB}},
		Shards: []Shard{
			{File: File{Name: "shard-00000.ntcb", Bytes: 300, SHA256: hashA}, Samples: 2, Keys: []string{"a#0", "a#1"}},
			{File: File{Name: "shards/shard-00001.ntcb", Bytes: 200, SHA256: hashB}, Samples: 1, Keys: []string{"b"}},
		},
		Meta: map[string]string{"model": "deit"},
	}
}

func TestIndexRoundTrip(t *testing.T) {
	x := validIndex()
	b, err := x.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\n    {\"file\":\"shard-00000.ntcb\"") {
		t.Errorf("one line per shard expected:\n%s", b)
	}
	y, err := ParseIndex(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	c, _ := y.Marshal()
	if string(c) != string(b) {
		t.Fatalf("round trip differs:\n%s\n%s", b, c)
	}
	if got := y.Starts(); len(got) != 3 || got[1] != 2 || got[2] != 3 {
		t.Errorf("starts %v", got)
	}
}

func TestParseIndexErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(x *Index)
		raw    string
		want   error
		text   string
	}{
		{name: "not json", raw: "{", want: ErrCorrupt},
		{name: "other format", raw: `{"format":"mds","version":2}`, want: ErrCorrupt},
		{name: "new version", raw: `{"format":"ntc-dataset","version":2}`, want: ErrUnsupportedVersion},
		{name: "unknown field", raw: `{"format":"ntc-dataset","version":1,"extra":1}`, want: ErrCorrupt, text: "extra"},
		{name: "two objects", raw: `{"format":"ntc-dataset","version":1} {}`, want: ErrCorrupt},
		{name: "bad layout", change: func(x *Index) { x.Layout.GridW = 3 }, want: ErrCorrupt},
		{name: "unknown codec", change: func(x *Index) { x.Codec = "jpeg" }, want: ErrCorrupt},
		{name: "sample sum", change: func(x *Index) { x.Samples = 4 }, want: ErrCorrupt, text: "hold 3"},
		{name: "escaping name", change: func(x *Index) { x.Shards[0].Name = "../etc/passwd" }, want: ErrCorrupt},
		{name: "absolute name", change: func(x *Index) { x.Shards[0].Name = "/etc/passwd" }, want: ErrCorrupt},
		{name: "hidden name", change: func(x *Index) { x.Shards[0].Name = ".x.ntcb" }, want: ErrCorrupt},
		{name: "url name", change: func(x *Index) { x.Shards[0].Name = "http://evil/x" }, want: ErrCorrupt},
		{name: "backslash", change: func(x *Index) { x.Shards[0].Name = `a\b` }, want: ErrCorrupt},
		{name: "long name", change: func(x *Index) { x.Shards[0].Name = strings.Repeat("a", 256) }, want: ErrCorrupt},
		{name: "same file twice", change: func(x *Index) { x.Shards[1].Name = x.Shards[0].Name }, want: ErrCorrupt},
		{name: "shard named index", change: func(x *Index) { x.Shards[1].Name = IndexName }, want: ErrCorrupt},
		{name: "bad hash", change: func(x *Index) { x.Shards[0].SHA256 = strings.ToUpper(hashA) }, want: ErrCorrupt},
		{name: "short hash", change: func(x *Index) { x.Models[0].ModelSHA256 = "ab" }, want: ErrCorrupt},
		{name: "negative size", change: func(x *Index) { x.Shards[0].Bytes = -1 }, want: ErrTooLarge},
		{name: "huge size", change: func(x *Index) { x.Shards[0].Bytes = 1 << 50 }, want: ErrTooLarge},
		{name: "empty shard", change: func(x *Index) { x.Shards[1].Samples, x.Shards[1].Keys, x.Samples = 0, nil, 2 }, want: ErrCorrupt},
		{name: "keys short", change: func(x *Index) { x.Shards[0].Keys = x.Shards[0].Keys[:1] }, want: ErrCorrupt},
		{name: "duplicate key", change: func(x *Index) { x.Shards[1].Keys[0] = "a#0" }, want: ErrCorrupt, text: `"a#0"`},
		{name: "empty key", change: func(x *Index) { x.Shards[1].Keys[0] = "" }, want: ErrCorrupt},
		{name: "long key", change: func(x *Index) { x.Shards[1].Keys[0] = strings.Repeat("k", 1025) }, want: ErrCorrupt},
		{name: "keys and a keys file", change: func(x *Index) { x.Keys = &File{Name: KeysName, Bytes: 10, SHA256: hashA} }, want: ErrCorrupt},
		{name: "model codec", change: func(x *Index) { x.Models[0].Codec = "zip" }, want: ErrCorrupt},
		{name: "model twice", change: func(x *Index) {
			m := x.Models[0]
			m.Name = "other.ntcm"
			x.Models = append(x.Models, m)
		}, want: ErrCorrupt},
		{name: "many samples", change: func(x *Index) { x.Samples = MaxSamples + 1 }, want: ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := []byte(tc.raw)
			if tc.change != nil {
				x := validIndex()
				tc.change(x)
				var err error
				if b, err = marshalUnchecked(x); err != nil {
					t.Fatal(err)
				}
			}
			_, err := ParseIndex(b)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.want, tc.text)
			}
		})
	}
}

// marshalUnchecked encodes an index without Marshal's checks.
func marshalUnchecked(x *Index) ([]byte, error) { return json.Marshal(x) }

func FuzzParseIndex(f *testing.F) {
	b, _ := validIndex().Marshal()
	f.Add(b)
	x := validIndex()
	x.Keys = &File{Name: KeysName, Bytes: 20, SHA256: hashA}
	for i := range x.Shards {
		x.Shards[i].Keys = nil
	}
	b, _ = x.Marshal()
	f.Add(b)
	f.Add([]byte(`{"format":"ntc-dataset","version":1}`))
	if b, err := os.ReadFile(filepath.Join(goldenDir, IndexName)); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := ParseIndex(b)
		if err != nil {
			return
		}
		// What parses marshals again, and reads back the same.
		c, err := x.Marshal()
		if err != nil {
			t.Fatalf("a parsed index does not marshal: %v", err)
		}
		if _, err := ParseIndex(c); err != nil {
			t.Fatalf("a marshalled index does not parse: %v", err)
		}
		if x.Keys != nil {
			keys, _ := x.MarshalKeys()
			_ = x.ReadKeys(strings.NewReader(string(keys)))
		}
	})
}

// FuzzReadKeys reads arbitrary bytes as the keys file of a valid index:
// no panic, and what it accepts has the index's size and hash.
func FuzzReadKeys(f *testing.F) {
	keys, _ := validIndex().MarshalKeys()
	f.Add(keys)
	f.Add([]byte("[\"a\"]\n[]\n"))
	f.Add([]byte("[\"a#0\",\"a#1\"]\n[\"b\"]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		x := validIndex()
		for i := range x.Shards {
			x.Shards[i].Keys = nil
		}
		x.Keys = &File{Name: KeysName, Bytes: int64(len(b)), SHA256: FormatHash(sha256.Sum256(b))}
		if err := x.ReadKeys(bytes.NewReader(b)); err != nil {
			return
		}
		for _, s := range x.Shards {
			if len(s.Keys) != s.Samples {
				t.Fatalf("accepted %d keys for %d samples", len(s.Keys), s.Samples)
			}
		}
	})
}

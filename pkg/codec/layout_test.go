package codec

import (
	"errors"
	"testing"
)

func TestInferLayout(t *testing.T) {
	cases := []struct {
		name                         string
		tokens, prefix, gridH, gridW int
		want                         Layout
		err                          bool
	}{
		{"cls+14x14", 197, -1, 0, 0, Layout{Tokens: 197, Dim: 8, Prefix: 1, GridH: 14, GridW: 14}, false},
		{"24x24 no cls", 576, -1, 0, 0, Layout{Tokens: 576, Dim: 8, GridH: 24, GridW: 24}, false},
		{"registers", 5 + 256, 5, 0, 0, Layout{Tokens: 261, Dim: 8, Prefix: 5, GridH: 16, GridW: 16}, false},
		{"explicit grid", 1 + 12*20, -1, 12, 20, Layout{Tokens: 241, Dim: 8, Prefix: 1, GridH: 12, GridW: 20}, false},
		{"grid and prefix agree", 241, 1, 12, 20, Layout{Tokens: 241, Dim: 8, Prefix: 1, GridH: 12, GridW: 20}, false},
		{"grid and prefix disagree", 241, 2, 12, 20, Layout{}, true},
		{"grid too big", 100, -1, 12, 20, Layout{}, true},
		{"not square", 150, -1, 0, 0, Layout{}, true},
		{"prefix leaves no square", 197, 0, 0, 0, Layout{}, true},
		{"half a grid", 197, -1, 14, 0, Layout{}, true},
		{"one token", 1, -1, 0, 0, Layout{Tokens: 1, Dim: 8, GridH: 1, GridW: 1}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := InferLayout(c.tokens, 8, c.prefix, c.gridH, c.gridW)
			if c.err {
				if !errors.Is(err, ErrBadLayout) {
					t.Fatalf("got %+v, %v; want ErrBadLayout", got, err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

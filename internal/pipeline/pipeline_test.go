package pipeline

import (
	"context"
	"errors"
	"testing"
)

// TestOrdered checks that emit sees every job once, in order, whatever
// order the workers finish in; that a panic in work comes back as a
// *PanicError; and that an error from emit stops the run.
func TestOrdered(t *testing.T) {
	for _, workers := range []int{0, 1, 3, 8} {
		var got []int
		err := Ordered(context.Background(), 100, workers,
			func(i int, j *int) error { *j = i; return nil },
			func(i int, j *int) error { *j *= 2; return nil },
			func(i int, j *int) error { got = append(got, *j); return nil })
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 100 {
			t.Fatalf("%d workers: %d results, want 100", workers, len(got))
		}
		for i, v := range got {
			if v != 2*i {
				t.Fatalf("%d workers: result %d is %d, want %d", workers, i, v, 2*i)
			}
		}
	}
	err := Ordered(context.Background(), 10, 2,
		func(int, *int) error { return nil },
		func(i int, _ *int) error {
			if i == 7 {
				panic("boom")
			}
			return nil
		},
		func(int, *int) error { return nil })
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Value != "boom" || len(pe.Stack) == 0 {
		t.Fatalf("a panic in work gave %v, want a *PanicError", err)
	}
	stop := errors.New("stop")
	n := 0
	err = Ordered(context.Background(), 50, 2,
		func(int, *int) error { return nil },
		func(int, *int) error { return nil },
		func(i int, _ *int) error {
			n++
			if i == 4 {
				return stop
			}
			return nil
		})
	if !errors.Is(err, stop) || n != 5 {
		t.Fatalf("emit's error: got %v after %d emits, want stop after 5", err, n)
	}
}

// Package pipeline runs numbered jobs on several goroutines and hands
// their results back in order: the one way ntc's packages parallelise
// work whose output must not depend on the number of goroutines.
package pipeline

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
)

// Ordered runs n jobs through three stages: fill (in job order, on one
// goroutine), work (on workers goroutines at once; 0 means GOMAXPROCS)
// and emit (in job order, on the calling goroutine). Job values are
// recycled: at most 2*workers+1 exist, which bounds memory. The first
// error from any stage stops the others; Ordered returns only after every
// goroutine it started has ended, so callers may release what fill and
// work use as soon as it returns. A panic in fill or work is returned as
// a *PanicError.
func Ordered[J any](ctx context.Context, n, workers int, fill func(i int, j *J) error, work func(i int, j *J) error, emit func(i int, j *J) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	type slot struct {
		i   int
		j   *J
		err error
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	free := make(chan *J, 2*workers+1)
	for range cap(free) {
		free <- new(J)
	}
	todo := make(chan slot, workers)
	done := make(chan slot, cap(free))

	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(todo)
		for i := range n {
			var j *J
			select {
			case j = <-free:
			case <-ctx.Done():
				return
			}
			err := Guard(func() error { return fill(i, j) })
			select {
			case todo <- slot{i, j, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range todo {
				if s.err == nil {
					s.err = Guard(func() error { return work(s.i, s.j) })
				}
				select {
				case done <- s:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	pending := map[int]slot{}
	for next := 0; next < n; {
		select {
		case s := <-done:
			pending[s.i] = s
		case <-ctx.Done():
			return ctx.Err()
		}
		for s, ok := pending[next]; ok; s, ok = pending[next] {
			delete(pending, next)
			if s.err != nil {
				return s.err
			}
			if err := emit(s.i, s.j); err != nil {
				return err
			}
			next++
			free <- s.j
		}
	}
	return nil
}

// PanicError is a panic that Guard caught: its value and the stack of
// the goroutine it happened on.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v\n%s", e.Value, e.Stack) }

// Guard runs f and turns a panic in it into a *PanicError. A panic on a
// goroutine that a library starts would otherwise end the process (exit
// 2, which reads as a usage error) before any caller could report it.
func Guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{r, debug.Stack()}
		}
	}()
	return f()
}

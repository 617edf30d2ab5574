package ntcb

import (
	"errors"
	"fmt"

	"github.com/ntc-project/ntc/pkg/codec"
)

// Origin is implemented by Sources that can say where a sample comes
// from, so that errors name the input file.
type Origin interface {
	// Origin returns the name of the input that holds sample i (a file
	// spec as tensorio.Open takes it).
	Origin(i int) string
}

// SampleError reports a value of the input that cannot be encoded, at the
// place the user can find it: the input file, the sample's key and index,
// the token and the channel. It wraps the codec's error (codec.ErrRange).
type SampleError struct {
	// Input names the file that holds the sample; empty when the Source
	// cannot say (see Origin).
	Input string
	// Key and Sample are the sample's key and its index in the dataset.
	Key    string
	Sample int
	// Token and Channel locate the value in the sample.
	Token, Channel int
	// Err is the codec's error, a *codec.RangeError.
	Err error
}

// Error implements error.
func (e *SampleError) Error() string {
	where := fmt.Sprintf("sample %q (index %d), token %d, channel %d", e.Key, e.Sample, e.Token, e.Channel)
	if e.Input != "" {
		where = e.Input + ": " + where
	}
	var re *codec.RangeError
	if errors.As(e.Err, &re) {
		return fmt.Sprintf("%s: %v: value %g %s", where, codec.ErrRange, re.Value, re.Why)
	}
	return fmt.Sprintf("%s: %v", where, e.Err)
}

// Unwrap returns the codec's error.
func (e *SampleError) Unwrap() error { return e.Err }

// locate turns a codec.RangeError about a run of samples into a
// SampleError naming the value's place; sample(k) is the dataset index of
// the k-th sample of the run. Other errors are returned as they are.
func locate(err error, src Source, l codec.Layout, sample func(k int) int) error {
	var re *codec.RangeError
	if !errors.As(err, &re) || re.Index < 0 {
		return err
	}
	i := sample(re.Index / l.Values())
	if i < 0 || i >= src.Len() {
		return err
	}
	within := re.Index % l.Values()
	se := &SampleError{Key: src.Key(i), Sample: i, Token: within / l.Dim, Channel: within % l.Dim, Err: err}
	if o, ok := src.(Origin); ok {
		se.Input = o.Origin(i)
	}
	return se
}

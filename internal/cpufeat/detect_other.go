//go:build !(386 || amd64) || purego

package cpufeat

// detect reports no extensions: this build has no assembly kernels.
func detect() Features { return Features{} }

// Package dataset reads and writes datasets of many .ntcb shards: a
// directory (local, or at an http(s) URL) with an index.json that lists
// the shards in order with their sample counts, sizes, SHA-256 and keys,
// and the model files the shards reference by hash, stored once.
//
// A Reader gives one view of the whole dataset: global sample indices,
// keys, reads by index or key. Opening reads index.json only; each shard
// is opened on first use and checked against its index entry, and at most
// Options.MaxOpenShards stay open. Encode writes a dataset from any
// ntcb.Source (shards encoded in parallel, index.json last, atomically)
// or appends shards to one.
//
// index.json is untrusted input: ParseIndex bounds its size and every
// count, and accepts only plain relative file names, so an index cannot
// point a reader outside its directory. docs/format.md specifies the
// format.
package dataset

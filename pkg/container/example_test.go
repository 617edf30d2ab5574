package container_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/ntc-project/ntc/pkg/container"
)

// Write a file with one model and two chunks to memory, then read a sample's
// chunk back by key, and one sample of a split chunk by itself.
func Example() {
	var buf bytes.Buffer
	w, err := container.NewWriter(&buf)
	if err != nil {
		log.Fatal(err)
	}
	const codec = 1 // an id from pkg/codec; the container does not interpret it
	if err := w.WriteModel(codec, []byte("fitted model")); err != nil {
		log.Fatal(err)
	}
	// A codec that can cut its payload into a head and one part per sample
	// (codec.Splitter) lets a reader fetch one sample without the others.
	if err := w.WriteSplitChunk(codec, []byte("head:cat tokens;dog tokens;"), 5, []int{11, 11}, []container.SampleInfo{
		{Key: "cat.jpg", Tokens: 197, Dim: 768},
		{Key: "dog.jpg", Tokens: 197, Dim: 768},
	}); err != nil {
		log.Fatal(err)
	}
	if err := w.WriteChunk(codec, []byte("payload of owl"), []container.SampleInfo{
		{Key: "owl.jpg", Tokens: 197, Dim: 768},
	}); err != nil {
		log.Fatal(err)
	}
	if err := w.Close([]byte(`{"model":"vit-b/16"}`)); err != nil {
		log.Fatal(err)
	}

	r, err := container.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("version %d: %d samples in %d chunks, metadata %s\n",
		r.Version(), r.NumSamples(), r.NumChunks(), r.Metadata())
	i, err := r.Lookup("owl.jpg")
	if err != nil {
		log.Fatal(err)
	}
	chunk, pos := r.SampleChunk(i)
	payload, err := r.ReadChunk(chunk, nil)
	if err != nil {
		log.Fatal(err)
	}
	s := r.Sample(i)
	fmt.Printf("%s: sample %d, %dx%d, chunk %d position %d, codec %d payload %q\n",
		s.Key, i, s.Tokens, s.Dim, chunk, pos, r.Chunk(chunk).Codec, payload)
	dog, _ := r.Lookup("dog.jpg")
	chunk, pos = r.SampleChunk(dog)
	part, err := r.ReadSampleRange(chunk, pos, 1, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("dog.jpg by itself: %q\n", part)
	if _, err := r.Lookup("emu.jpg"); err != nil {
		fmt.Println(err)
	}
	fmt.Println("verify:", r.Verify())
	// Output:
	// version 2: 3 samples in 2 chunks, metadata {"model":"vit-b/16"}
	// owl.jpg: sample 2, 197x768, chunk 1 position 0, codec 1 payload "payload of owl"
	// dog.jpg by itself: "head:dog tokens;"
	// key "emu.jpg": not found
	// verify: <nil>
}

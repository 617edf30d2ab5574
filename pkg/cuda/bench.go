package cuda

// BenchOptions configure Bench.
type BenchOptions struct {
	// Samples limits the samples decoded (the first ones); 0 means all.
	Samples int
	// Repeats is the number of timed runs of each measurement; the
	// median is reported. 0 means 5.
	Repeats int
	// Decoder configures the decoder (output type, workers, lanes).
	Decoder DecoderOptions
}

// BenchResult is what Bench measured, on one device in one run. Rates are
// in GB (10^9 bytes) per second of output tokens, so that every figure
// compares with every other.
type BenchResult struct {
	Device      string `json:"device"`
	NTCB        string `json:"ntcb"`
	NPY         string `json:"npy"`
	Codecs      string `json:"codecs"`
	Samples     int    `json:"samples"`
	Tokens      int    `json:"tokens_per_sample"`
	Dim         int    `json:"dim"`
	OutputType  string `json:"output_dtype"`
	OutputBytes int64  `json:"output_bytes"`
	NTCBBytes   int64  `json:"ntcb_bytes"`
	NPYBytes    int64  `json:"npy_bytes"`
	// StagedBytes is what crosses PCIe for the .ntcb (the staged chunks)
	// when the GPU entropy-decodes, StagedHostBytes when the CPU does.
	StagedBytes     int64 `json:"staged_bytes"`
	StagedHostBytes int64 `json:"staged_host_bytes"`

	// Kernel is the device part after entropy decoding (kernels and GEMM
	// over symbols staged by the CPU, already in device memory), timed
	// with CUDA events.
	KernelSeconds float64 `json:"kernel_s"`
	KernelGBps    float64 `json:"kernel_gbps"`
	// Device is the whole device part when the GPU entropy-decodes too
	// (over coefficient streams already in device memory).
	DeviceSeconds float64 `json:"device_s"`
	DeviceGBps    float64 `json:"device_gbps"`
	// Copy is a device-to-device copy of the same output bytes: the
	// memory roofline (it reads and writes them).
	CopySeconds float64 `json:"copy_s"`
	CopyGBps    float64 `json:"copy_gbps"`
	// KernelVsCopy = CopySeconds / KernelSeconds; DeviceVsCopy likewise.
	KernelVsCopy float64 `json:"kernel_vs_copy"`
	DeviceVsCopy float64 `json:"device_vs_copy"`
	// Stage is the host part alone (read, check and stage every chunk on
	// Workers goroutines), wall time: copying the coefficient streams
	// (Stage) or entropy decoding them (StageHost).
	StageSeconds     float64 `json:"stage_s"`
	StageGBps        float64 `json:"stage_gbps"`
	StageHostSeconds float64 `json:"stage_host_s"`
	StageHostGBps    float64 `json:"stage_host_gbps"`
	// E2E is wall time from opening the .ntcb (in the page cache) to the
	// tokens in device memory, with the entropy decoding on the GPU
	// (E2E) or on the CPU (E2EHost).
	E2ESeconds     float64 `json:"e2e_ntcb_s"`
	E2EGBps        float64 `json:"e2e_ntcb_gbps"`
	E2EHostSeconds float64 `json:"e2e_ntcb_host_s"`
	E2EHostGBps    float64 `json:"e2e_ntcb_host_gbps"`
	// NPY is wall time from opening the float16 .npy (in the page cache)
	// to the tokens in device memory: reads into pinned buffers, each
	// copied to the device while the next is read.
	NPYSeconds float64 `json:"e2e_npy_s"`
	NPYGBps    float64 `json:"e2e_npy_gbps"`
	// Speedup = NPYSeconds / E2ESeconds; SpeedupHost likewise.
	Speedup     float64 `json:"speedup_vs_npy"`
	SpeedupHost float64 `json:"speedup_host_vs_npy"`
	// MaxRelErr is the largest relative error (norm of the difference
	// over the norm of the CPU decode) of the samples checked against the
	// CPU decoder.
	MaxRelErr float64 `json:"max_rel_err"`
	Checked   int     `json:"samples_checked"`
}

{
  "target_defaults": {
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
    "cflags_cc": ["-std=c++17", "-fexceptions", "-O3", "-fno-math-errno", "-fPIC"]
  },
  "targets": [
    {
      "target_name": "weft_isa_avx512",
      "type": "static_library",
      "sources": ["native/isa/gemm_avx512.cc", "native/isa/kernels_avx512.cc"],
      "cflags_cc": ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx2", "-mfma", "-mf16c"]
    },
    {
      "target_name": "weft_isa_avx512vnni",
      "type": "static_library",
      "sources": ["native/isa/quant_avx512.cc"],
      "cflags_cc": ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx512vnni", "-mavx2", "-mfma", "-mf16c"]
    },
    {
      "target_name": "weft_isa_avx2",
      "type": "static_library",
      "sources": ["native/isa/gemm_avx2.cc", "native/isa/kernels_avx2.cc", "native/isa/quant_avx2.cc"],
      "cflags_cc": ["-mavx2", "-mfma", "-mf16c"]
    },
    {
      "target_name": "weft",
      "dependencies": ["weft_isa_avx512", "weft_isa_avx512vnni", "weft_isa_avx2"],
      "sources": [
        "native/addon.cc",
        "native/cpu.cc",
        "native/threadpool.cc",
        "native/glue_gemm.cc",
        "native/glue_kernels.cc",
        "native/glue_paged.cc",
        "native/glue_quant.cc",
        "native/paged_attention.cc",
        "native/quant.cc",
        "native/text.cc",
        "native/bpe.cc",
        "native/gemm.cc",
        "native/elementwise.cc",
        "native/reduce.cc",
        "native/nn.cc",
        "native/attention.cc",
        "native/index.cc",
        "native/loss.cc",
        "native/optim.cc",
        "native/convert.cc",
        "native/isa/kernels_portable.cc"
      ],
      "libraries": ["-lpthread"]
    }
  ]
}

"""How textrec's programs run on a backend: one package for the machinery that makes them fast.

  settings         the knobs, in one place (config section `runtime`, or `configure(...)`)
  programs         jitted forwards compiled once per input shape, kept in memory and on disk
  xla_cpu          which XLA:CPU kernels a program uses, chosen by timing it on this machine
  native_depthwise a C++ depthwise convolution for XLA:CPU inference (XLA FFI)
  compile_cache    JAX's persistent compile cache under textrec's cache root
  hugepages        transparent huge pages for XLA:CPU buffers (the CLI re-executes itself)
  malloc           glibc's malloc arenas capped and freed pages trimmed, for servers' RSS
"""

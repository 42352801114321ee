// The C function table of roboframes' core, exported by `roboframes._native` as a PyCapsule
// named "roboframes._native.CAPI". Mirror of `python/src/capi.rs`: keep the two identical.
// A dataset's registry handle (roboframes.Dataset.handle) becomes a counted reference with
// `dataset_acquire` (null on error, with "[ErrorClass#id] message" in `err`), kept until
// `dataset_release`; the operations take that reference. They return 0 on success, else the
// error's class code with "[ErrorClass#id] message" (the roboframes.errors class, the id under
// which Python's roboframes._native.typed_error finds the typed error, then the message),
// NUL-terminated, in `err` (`err_len` bytes).
#pragma once

#include <cstddef>
#include <cstdint>

namespace roboframes {

constexpr uint32_t CAPI_VERSION = 2;
constexpr const char* CAPI_CAPSULE = "roboframes._native.CAPI";

struct CApi {
  uint32_t version;
  const void* (*dataset_acquire)(int64_t handle, char* err, size_t err_len);
  void (*dataset_release)(const void* dataset);
  int32_t (*fill_arrays)(
      const void* dataset,
      const int64_t* indices,
      size_t n,
      const char* frame_dtype,
      bool channels_last,
      uint8_t* const* arrays,
      const size_t* lens,
      size_t n_arrays,
      char* err,
      size_t err_len);
  int32_t (*decode_frames)(
      const void* dataset,
      const char* camera,
      const int64_t* episodes,
      const double* timestamps,
      size_t n,
      const char* frame_dtype,
      bool channels_last,
      uint8_t* out,
      size_t out_len,
      char* err,
      size_t err_len);
  int32_t (*gather)(
      const void* dataset,
      const char* key,
      const int64_t* index,
      size_t n,
      const int64_t* offsets,
      size_t t,
      uint8_t* values,
      size_t values_len,
      uint8_t* pads,
      size_t pads_len,
      char* err,
      size_t err_len);
};

} // namespace roboframes

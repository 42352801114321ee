// roboframes' MLX primitive: lazy arrays whose evaluation calls the Rust core through the C
// function table `roboframes._native` exports (roboframes_capi.h). No decode, planning or
// window logic here: this file allocates MLX outputs, lends them to the core and turns core
// errors into exceptions. Output shapes and dtypes come from Python (the core's output specs),
// so they are known when the graph is built.

#include <Python.h>

#include <cstring>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "mlx/allocator.h"
#include "mlx/array.h"
#include "mlx/backend/cpu/encoder.h"
#include "mlx/primitives.h"
#include "mlx/stream.h"
#include "mlx/utils.h"

#include "roboframes_capi.h"

namespace nb = nanobind;
namespace mx = mlx::core;

namespace roboframes {

namespace {

// A copy of the core's table, taken once from the `roboframes._native` capsule (with the GIL
// held). A copy, not a pointer into the capsule: datasets may be released by arrays that
// outlive the capsule at interpreter exit. The function pointers point into _native's shared
// library, which CPython never unloads.
CApi g_table{};
bool g_ready = false;

const CApi& api() {
  if (!g_ready) {
    throw std::runtime_error("roboframes: the MLX extension was used before it was initialised");
  }
  return g_table;
}

[[noreturn]] void invalid(const std::string& msg) {
  throw std::runtime_error("[InvalidArgumentError] roboframes: " + msg);
}

// A core error raised while evaluating. MLX re-raises errors of evaluation as RuntimeError
// with the message, which the core starts with the roboframes.errors class and the id of the
// kept typed error in brackets: "[FrameTimestampError#17] file '...', episode 3, key '...': ..."
// (roboframes.mlx.eval re-raises it as that error, roboframes.errors.from_native).
void check(int32_t code, const char* err) {
  if (code != 0) {
    throw std::runtime_error(err);
  }
}

// Elements of a 1-D input (any stride) of type T.
template <typename T>
std::vector<T> read_1d(const mx::array& a) {
  std::vector<T> out(a.size());
  if (a.size() == 0) {
    return out;
  }
  const T* p = a.data<T>();
  const auto stride = a.strides(0);
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = p[static_cast<int64_t>(i) * stride];
  }
  return out;
}

// A counted reference to an open dataset of the core: a lazy array keeps the dataset it
// reads open, even after the Python objects that made it are gone.
using DatasetRef = std::shared_ptr<const void>;

DatasetRef acquire(int64_t handle) {
  char err[1024] = {0};
  const void* ds = api().dataset_acquire(handle, err, sizeof(err));
  if (ds == nullptr) {
    throw std::runtime_error(err);
  }
  return DatasetRef(ds, [](const void* p) { api().dataset_release(p); });
}

}  // namespace

enum class Op : int { Batch = 0, Frames = 1, Gather = 2 };

// One primitive for the three operations; `name` is the camera (Frames) or the key (Gather).
class Decode : public mx::Primitive {
 public:
  Decode(mx::Stream stream, Op op, DatasetRef dataset, std::string name, std::string frame_dtype,
         bool channels_last, std::vector<int64_t> offsets, std::vector<mx::Shape> item_shapes)
      : mx::Primitive(stream),
        op_(op),
        dataset_(std::move(dataset)),
        name_(std::move(name)),
        frame_dtype_(std::move(frame_dtype)),
        channels_last_(channels_last),
        offsets_(std::move(offsets)),
        item_shapes_(std::move(item_shapes)) {}

  void eval_cpu(const std::vector<mx::array>& inputs, std::vector<mx::array>& outputs) override {
    for (auto& out : outputs) {
      out.set_data(mx::allocator::malloc(out.nbytes()));
    }
    auto& encoder = mx::cpu::get_command_encoder(stream());
    for (const auto& in : inputs) {
      encoder.set_input_array(in);
    }
    for (auto& out : outputs) {
      encoder.set_output_array(out);
    }
    std::vector<mx::array> ins;
    for (const auto& in : inputs) {
      ins.push_back(mx::array::unsafe_weak_copy(in));
    }
    std::vector<uint8_t*> ptrs;
    std::vector<size_t> lens;
    for (auto& out : outputs) {
      ptrs.push_back(out.data<uint8_t>());
      lens.push_back(out.nbytes());
    }
    encoder.dispatch([op = op_, ds = dataset_, name = name_, fmt = frame_dtype_,
                      cl = channels_last_, offsets = offsets_, ins = std::move(ins),
                      ptrs = std::move(ptrs), lens = std::move(lens)]() {
      char err[2048] = {0};
      switch (op) {
        case Op::Batch: {
          auto idx = read_1d<int64_t>(ins.at(0));
          check(api().fill_arrays(ds.get(), idx.data(), idx.size(), fmt.c_str(), cl, ptrs.data(),
                                  lens.data(), ptrs.size(), err, sizeof(err)),
                err);
          break;
        }
        case Op::Frames: {
          auto eps = read_1d<int64_t>(ins.at(0));
          auto ts = read_1d<double>(ins.at(1));
          if (ts.size() != eps.size()) {  // (a shapeless compile may pass other lengths)
            invalid("decode_frames: episode_index and timestamp differ in length");
          }
          check(api().decode_frames(ds.get(), name.c_str(), eps.data(), ts.data(), eps.size(),
                                    fmt.c_str(), cl, ptrs.at(0), lens.at(0), err, sizeof(err)),
                err);
          break;
        }
        case Op::Gather: {
          auto idx = read_1d<int64_t>(ins.at(0));
          check(api().gather(ds.get(), name.c_str(), idx.data(), idx.size(), offsets.data(),
                             offsets.size(), ptrs.at(0), lens.at(0), ptrs.at(1), lens.at(1), err,
                             sizeof(err)),
                err);
          break;
        }
      }
    });
  }

  void eval_gpu(const std::vector<mx::array>&, std::vector<mx::array>&) override {
    throw std::runtime_error(
        "roboframes: the decode primitive runs on a CPU stream (its arrays are built on one)");
  }

  const char* name() const override { return "RoboframesDecode"; }

  bool is_equivalent(const mx::Primitive& other) const override {
    const auto* o = dynamic_cast<const Decode*>(&other);
    return o != nullptr && o->op_ == op_ && o->dataset_ == dataset_ && o->name_ == name_ &&
           o->frame_dtype_ == frame_dtype_ && o->channels_last_ == channels_last_ &&
           o->offsets_ == offsets_ && o->item_shapes_ == item_shapes_;
  }

  // Every output is (n, *item_shape) with n the length of the first input: this is what
  // mx.compile(shapeless=True) needs.
  std::vector<mx::Shape> output_shapes(const std::vector<mx::array>& inputs) override {
    std::vector<mx::Shape> shapes;
    const int n = inputs.at(0).shape(0);
    for (const auto& in : inputs) {
      if (in.ndim() != 1 || in.shape(0) != n) {
        invalid("inputs must be 1-D arrays of the same length");
      }
    }
    for (const auto& item : item_shapes_) {
      mx::Shape s{n};
      s.insert(s.end(), item.begin(), item.end());
      shapes.push_back(std::move(s));
    }
    return shapes;
  }

 private:
  Op op_;
  DatasetRef dataset_;
  std::string name_;
  std::string frame_dtype_;
  bool channels_last_;
  std::vector<int64_t> offsets_;
  std::vector<mx::Shape> item_shapes_;
};

// Builds the lazy outputs of one operation. Inputs: the item indices (Batch, Gather) or the
// episode indices and times (Frames), 1-D, int64 (times float64). Outputs: (n, *item_shape)
// of the given dtypes, on the CPU stream.
std::vector<mx::array> decode_op(int op, int64_t handle, const std::string& name,
                                 const std::string& frame_dtype, bool channels_last,
                                 const std::vector<int64_t>& offsets,
                                 const std::vector<mx::array>& inputs,
                                 const std::vector<std::vector<int>>& item_shapes,
                                 const std::vector<mx::Dtype>& dtypes) {
  if (op < 0 || op > 2) {
    invalid("unknown operation");
  }
  const size_t want_inputs = op == static_cast<int>(Op::Frames) ? 2 : 1;
  if (inputs.size() != want_inputs || item_shapes.size() != dtypes.size()) {
    invalid("wrong number of inputs or outputs");
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto& in = inputs[i];
    const auto want = (op == static_cast<int>(Op::Frames) && i == 1) ? mx::float64 : mx::int64;
    if (in.ndim() != 1 || in.dtype() != want) {
      invalid("inputs must be 1-D int64 (times: float64) arrays");
    }
    if (in.shape(0) != inputs[0].shape(0)) {
      invalid("inputs must have the same length");
    }
  }
  const auto stream = mx::default_stream(mx::Device::cpu);
  std::vector<mx::Shape> items;
  std::vector<mx::Shape> shapes;
  for (const auto& item : item_shapes) {
    mx::Shape s(item.begin(), item.end());
    items.push_back(s);
    s.insert(s.begin(), inputs[0].shape(0));
    shapes.push_back(std::move(s));
  }
  auto prim = std::make_shared<Decode>(stream, static_cast<Op>(op), roboframes::acquire(handle), name, frame_dtype,
                                       channels_last, offsets, std::move(items));
  return mx::array::make_arrays(std::move(shapes), dtypes, prim, inputs);
}

}  // namespace roboframes

NB_MODULE(_mlx_ext, m) {
  m.doc() = "roboframes' MLX primitive (calls the Rust core through roboframes._native.CAPI)";
  nb::module_::import_("mlx.core");
  nb::object native = nb::module_::import_("roboframes._native");
  nb::object capsule = native.attr("CAPI");
  auto* table = static_cast<const roboframes::CApi*>(
      PyCapsule_GetPointer(capsule.ptr(), roboframes::CAPI_CAPSULE));
  if (table == nullptr) {
    throw nb::python_error();
  }
  if (table->version != roboframes::CAPI_VERSION) {
    std::ostringstream msg;
    msg << "roboframes: this MLX extension needs C API version " << roboframes::CAPI_VERSION
        << ", roboframes._native has " << table->version << ": rebuild mlx_ext";
    throw std::runtime_error(msg.str());
  }
  roboframes::g_table = *table;
  roboframes::g_ready = true;
  m.attr("CAPI_VERSION") = roboframes::CAPI_VERSION;

  m.def("decode_op", &roboframes::decode_op, nb::arg("op"), nb::arg("handle"), nb::arg("name"),
        nb::arg("frame_dtype"), nb::arg("channels_last"), nb::arg("offsets"), nb::arg("inputs"),
        nb::arg("item_shapes"), nb::arg("dtypes"),
        "Lazy outputs of one roboframes operation (0: a batch of items, 1: frames, 2: gather).");
}

// Optional CUDA kernels for baggan.stylegan2.ops (inference path): fused bias + activation + gain + clamp,
// and direct FIR up/down-sampling (upfirdn2d). The PyTorch reference in ops.py defines the semantics;
// tests/test_networks_ops.py compares both where CUDA exists.

#include <torch/extension.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

namespace {

// act: 0 linear, 1 relu, 2 lrelu, 3 tanh, 4 sigmoid (see ACT_CODES in __init__.py).
template <typename scalar_t>
__global__ void bias_act_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ b, scalar_t* __restrict__ y,
                                int64_t numel, int64_t step_b, int64_t size_b, int act, float alpha, float gain,
                                float clamp) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < numel; i += (int64_t)blockDim.x * gridDim.x) {
    float v = static_cast<float>(x[i]);
    if (b != nullptr) v += static_cast<float>(b[(i / step_b) % size_b]);
    if (act == 1) v = v > 0.f ? v : 0.f;
    else if (act == 2) v = v > 0.f ? v : v * alpha;
    else if (act == 3) v = tanhf(v);
    else if (act == 4) v = 1.f / (1.f + expf(-v));
    v *= gain;
    if (clamp >= 0.f) v = fminf(fmaxf(v, -clamp), clamp);
    y[i] = static_cast<scalar_t>(v);
  }
}

// One thread per output pixel: out[n,c,oy,ox] = gain * sum_ab P[oy*down+a, ox*down+b] * fk[a,b], where P is the
// zero-upsampled, padded input and fk the filter (flipped unless flip_filter, i.e. true convolution).
template <typename scalar_t>
__global__ void upfirdn2d_kernel(const scalar_t* __restrict__ x, const float* __restrict__ f, scalar_t* __restrict__ y,
                                 int64_t planes, int in_h, int in_w, int out_h, int out_w, int fh, int fw, int up,
                                 int down, int px0, int py0, bool flip_filter, float gain) {
  const int64_t total = planes * out_h * out_w;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)blockDim.x * gridDim.x) {
    const int ox = i % out_w;
    const int oy = (i / out_w) % out_h;
    const int64_t plane = i / ((int64_t)out_w * out_h);
    const scalar_t* xp = x + plane * in_h * in_w;
    float acc = 0.f;
    for (int a = 0; a < fh; ++a) {
      const int uy = oy * down + a - py0;  // row in the zero-upsampled image
      if (uy < 0 || uy >= in_h * up || uy % up != 0) continue;
      for (int b = 0; b < fw; ++b) {
        const int ux = ox * down + b - px0;
        if (ux < 0 || ux >= in_w * up || ux % up != 0) continue;
        const float tap = flip_filter ? f[a * fw + b] : f[(fh - 1 - a) * fw + (fw - 1 - b)];
        acc += static_cast<float>(xp[(uy / up) * in_w + ux / up]) * tap;
      }
    }
    y[i] = static_cast<scalar_t>(acc * gain);
  }
}

int blocks_for(int64_t n) { return (int)std::min<int64_t>((n + 255) / 256, 65535); }

}  // namespace

torch::Tensor bias_act(torch::Tensor x, torch::Tensor b, int64_t dim, int64_t act, double alpha, double gain,
                       double clamp) {
  TORCH_CHECK(x.is_cuda(), "bias_act: x must be a CUDA tensor");
  const at::cuda::CUDAGuard guard(x.device());
  x = x.contiguous();
  const bool has_b = b.numel() > 0;
  if (has_b) {
    TORCH_CHECK(b.dim() == 1 && b.size(0) == x.size(dim), "bias_act: bias size mismatch");
    b = b.to(x.scalar_type()).contiguous();
  }
  int64_t step_b = 1;
  for (int64_t d = dim + 1; d < x.dim(); ++d) step_b *= x.size(d);
  auto y = torch::empty_like(x);
  const int64_t n = x.numel();
  if (n == 0) return y;
  AT_DISPATCH_FLOATING_TYPES_AND_HALF(x.scalar_type(), "bias_act", [&] {
    bias_act_kernel<scalar_t><<<blocks_for(n), 256, 0, c10::cuda::getCurrentCUDAStream()>>>(
        x.data_ptr<scalar_t>(), has_b ? b.data_ptr<scalar_t>() : nullptr, y.data_ptr<scalar_t>(), n, step_b,
        has_b ? b.size(0) : 1, (int)act, (float)alpha, (float)gain, (float)clamp);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return y;
}

torch::Tensor upfirdn2d(torch::Tensor x, torch::Tensor f, int64_t up, int64_t down, int64_t px0, int64_t px1,
                        int64_t py0, int64_t py1, bool flip_filter, double gain) {
  TORCH_CHECK(x.is_cuda() && x.dim() == 4, "upfirdn2d: x must be a 4-D CUDA tensor");
  TORCH_CHECK(f.dim() == 2 && f.scalar_type() == torch::kFloat32, "upfirdn2d: f must be a 2-D float32 filter");
  const at::cuda::CUDAGuard guard(x.device());
  x = x.contiguous();
  f = f.to(x.device()).contiguous();
  const int in_h = x.size(2), in_w = x.size(3), fh = f.size(0), fw = f.size(1);
  const int out_h = (in_h * up + py0 + py1 - fh) / down + 1;
  const int out_w = (in_w * up + px0 + px1 - fw) / down + 1;
  TORCH_CHECK(out_h >= 1 && out_w >= 1, "upfirdn2d: output would be empty");
  auto y = torch::empty({x.size(0), x.size(1), out_h, out_w}, x.options());
  const int64_t total = y.numel();
  AT_DISPATCH_FLOATING_TYPES_AND_HALF(x.scalar_type(), "upfirdn2d", [&] {
    upfirdn2d_kernel<scalar_t><<<blocks_for(total), 256, 0, c10::cuda::getCurrentCUDAStream()>>>(
        x.data_ptr<scalar_t>(), f.data_ptr<float>(), y.data_ptr<scalar_t>(), x.size(0) * x.size(1), in_h, in_w,
        out_h, out_w, fh, fw, (int)up, (int)down, (int)px0, (int)py0, flip_filter, (float)gain);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return y;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("bias_act", &bias_act, "fused bias + activation + gain + clamp (forward)");
  m.def("upfirdn2d", &upfirdn2d, "FIR up-sample, filter, down-sample (forward)");
}

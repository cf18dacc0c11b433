"""Windowed front end, batch 8 x 4 s: eager LN + GELU vs one compiled LN+GELU function (dynamic shapes); interleaved."""
import time, statistics, warnings, logging, torch, torch.nn.functional as F
warnings.simplefilter("ignore"); logging.disable(logging.WARNING)
torch.set_num_threads(2)
from compress.variants import load_variant
from compress.methods import front_end
fe = load_variant("front-end-bf16").model.wav2vec2.feature_extractor

def ln_gelu(x, weight, bias, eps: float):
    return F.gelu(F.layer_norm(x.permute(0, 2, 3, 1), weight.shape, weight, bias, eps).permute(0, 3, 1, 2))
compiled = torch.compile(ln_gelu, dynamic=True)

def blocks(self, input_values, fused):
    x = front_end._channels_last(input_values[:, None, None, :], self._footprint_front_end_dtype)
    for block, (kind, norm) in zip(self.conv_layers, self._footprint_front_end_plan):
        weight, bias = self._conv_weights(block.conv)
        x = F.conv2d(x, weight, bias, (1, block.conv.stride[0]))
        n = block.layer_norm
        if fused:
            x = compiled(x, n.weight, n.bias, n.eps)
        else:
            x = F.gelu(F.layer_norm(x.permute(0, 2, 3, 1), n.normalized_shape, n.weight, n.bias, n.eps).permute(0, 3, 1, 2))
    return x[:, :, 0, :].float()
cls = type(fe)
x = torch.randn(8, 64000)
with torch.inference_mode():
    fe._blocks_forward = lambda v: blocks(fe, v, False)
    ref = fe(x)
    fe._blocks_forward = lambda v: blocks(fe, v, True)
    t = time.perf_counter(); y = fe(x); print("first %.1f s" % (time.perf_counter() - t), "rel %.2e" % ((y - ref).norm() / ref.norm()).item())
    x2 = torch.randn(8, 52000); t = time.perf_counter(); fe(x2); print("second length %.1f s" % (time.perf_counter() - t))
    ts = {k: [] for k in (False, True)}
    for r in range(20):
        for k in (False, True):
            fe._blocks_forward = (lambda k: (lambda v: blocks(fe, v, k)))(k)
            t = time.perf_counter()
            for _ in range(3): fe(x)
            ts[k].append((time.perf_counter() - t) / 3 * 1000)
    print("eager %.1f ms, compiled LN+GELU %.1f ms, ratio %.3f" % (statistics.median(ts[False]), statistics.median(ts[True]), statistics.median([b / a for a, b in zip(ts[False], ts[True])])))

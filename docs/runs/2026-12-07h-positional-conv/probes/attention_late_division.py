import torch, time, warnings, logging, statistics
warnings.simplefilter("ignore")
import torch._inductor.config as ic0; ic0.cpp.enable_kernel_profile=True
torch.set_num_threads(2)
from compress.methods.attention import matmul_attention
B,H,T,D=8,4,250,48
g=torch.Generator().manual_seed(0)
q,k,v=(torch.randn(B,H,T,D,generator=g).bfloat16() for _ in range(3))
m=torch.ones(B,T); m[4:,-15:]=0
keep=m[:,None,None,:].bfloat16()
def cur(q,k,v,keep): return matmul_attention(None,q,k,v,keep)[0]
def latediv(q,k,v,keep):
    scaling=q.size(-1)**-0.5
    k=torch.where(keep.transpose(-1,-2)>0,k,k[:,:,:1])
    s=torch.matmul(q*scaling,k.transpose(-1,-2))
    e=(s-s.amax(-1,keepdim=True)).exp()*keep
    out=torch.matmul(e,v)/e.sum(-1,keepdim=True)
    return out.transpose(1,2).contiguous()
def latediv32(q,k,v,keep):
    scaling=q.size(-1)**-0.5
    k=torch.where(keep.transpose(-1,-2)>0,k,k[:,:,:1])
    s=torch.matmul(q*scaling,k.transpose(-1,-2))
    e=((s-s.amax(-1,keepdim=True)).exp()*keep).to(v.dtype)
    out=torch.matmul(e,v)/e.float().sum(-1,keepdim=True)
    return out.transpose(1,2).contiguous()
def sdpa(q,k,v,keep):
    return torch.nn.functional.scaled_dot_product_attention(q,k,v,attn_mask=keep.bool()).transpose(1,2).contiguous()
ref=sdpa(q.float(),k.float(),v.float(),keep)
fs={n:torch.compile(f,dynamic=True) for n,f in [("cur",cur),("latediv",latediv),("latediv32",latediv32)]}
with torch.inference_mode():
    for n,f in fs.items():
        o=f(q,k,v,keep); print(n,"err",(o.float()-ref)[:4].abs().max().item(), (o.float()-ref)[4:,:-15].abs().max().item(), o.dtype)
    ts={n:[] for n in fs}
    for r in range(21):
        for n,f in fs.items():
            s=time.perf_counter(); 
            for _ in range(12): f(q,k,v,keep)
            ts[n].append((time.perf_counter()-s)/12*1000)
    for n in fs: print(n,"ms/call %.3f"%statistics.median(ts[n]), "ratio to cur %.3f" % statistics.median([a/b for a,b in zip(ts[n],ts["cur"])]))
    from torch.profiler import profile, ProfilerActivity
    for n in ("cur","latediv","latediv32"):
        with profile(activities=[ProfilerActivity.CPU]) as p:
            for _ in range(20): fs[n](q,k,v,keep)
        print(n, {e.key[:60]: round(e.self_cpu_time_total/20/1000,3) for e in p.key_averages() if e.self_cpu_time_total/20/1000 > 0.03})

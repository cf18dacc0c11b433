import torch, time, warnings, statistics
warnings.simplefilter("ignore")
import torch._inductor.config as ic0; ic0.cpp.enable_kernel_profile=True
torch.set_num_threads(2)
B,H,T,D=8,4,250,48
g=torch.Generator().manual_seed(0)
q,k,v=(torch.randn(B,H,T,D,generator=g).bfloat16() for _ in range(3))
mask=torch.ones(B,T,dtype=torch.bool); mask[4:,-15:]=False
def A(q,k,v,mask):  # current
    keep=mask[:,None,None,:].to(q.dtype)
    k=torch.where(keep.transpose(-1,-2)>0,k,k[:,:,:1])
    s=torch.matmul(q*q.size(-1)**-0.5,k.transpose(-1,-2))
    e=((s-s.amax(-1,keepdim=True)).exp()*keep).to(v.dtype)
    out=torch.matmul(e,v)/e.sum(-1,keepdim=True,dtype=torch.float32)
    return out.to(v.dtype).transpose(1,2).contiguous()
def B_(q,k,v,mask):  # bf16 sum
    keep=mask[:,None,None,:].to(q.dtype)
    k=torch.where(keep.transpose(-1,-2)>0,k,k[:,:,:1])
    s=torch.matmul(q*q.size(-1)**-0.5,k.transpose(-1,-2))
    e=((s-s.amax(-1,keepdim=True)).exp()*keep).to(v.dtype)
    out=torch.matmul(e,v)/e.sum(-1,keepdim=True)
    return out.to(v.dtype).transpose(1,2).contiguous()
def C(q,k,v,mask):  # additive bias, fp32 sum
    bias=torch.zeros(mask.shape,dtype=q.dtype).masked_fill(~mask,-1e4)[:,None,None,:]
    s=torch.matmul(q*q.size(-1)**-0.5,k.transpose(-1,-2))+bias
    e=(s-s.amax(-1,keepdim=True)).exp().to(v.dtype)
    out=torch.matmul(e,v)/e.sum(-1,keepdim=True,dtype=torch.float32)
    return out.to(v.dtype).transpose(1,2).contiguous()
def D(q,k,v,mask):  # additive bias, bf16 sum
    bias=torch.zeros(mask.shape,dtype=q.dtype).masked_fill(~mask,-1e4)[:,None,None,:]
    s=torch.matmul(q*q.size(-1)**-0.5,k.transpose(-1,-2))+bias
    e=(s-s.amax(-1,keepdim=True)).exp().to(v.dtype)
    out=torch.matmul(e,v)/e.sum(-1,keepdim=True)
    return out.to(v.dtype).transpose(1,2).contiguous()
def E(q,k,v,mask):  # where-mask on scores before max (finite fill), fp32 sum
    s=torch.matmul(q*q.size(-1)**-0.5,k.transpose(-1,-2))
    s=torch.where(mask[:,None,None,:],s,-1e4)
    e=(s-s.amax(-1,keepdim=True)).exp().to(v.dtype)
    out=torch.matmul(e,v)/e.sum(-1,keepdim=True,dtype=torch.float32)
    return out.to(v.dtype).transpose(1,2).contiguous()
ref=torch.nn.functional.scaled_dot_product_attention(q.float(),k.float(),v.float(),attn_mask=mask[:,None,None,:]).transpose(1,2)
fs={n:torch.compile(f,dynamic=True) for n,f in [("A",A),("B",B_),("C",C),("D",D),("E",E)]}
with torch.inference_mode():
    for n,f in fs.items():
        o=f(q,k,v,mask); print(n,"err %.4f %.4f"%((o.float()-ref)[:4].abs().max().item(), (o.float()-ref)[4:,:-15].abs().max().item()))
    ts={n:[] for n in fs}
    for r in range(21):
        for n,f in fs.items():
            s=time.perf_counter()
            for _ in range(12): f(q,k,v,mask)
            ts[n].append((time.perf_counter()-s)/12*1000)
    for n in fs: print(n,"ms/call %.3f"%statistics.median(ts[n]), "ratio to A %.3f" % statistics.median([a/b for a,b in zip(ts[n],ts["A"])]))
    from torch.profiler import profile, ProfilerActivity
    for n in fs:
        with profile(activities=[ProfilerActivity.CPU]) as p:
            for _ in range(20): fs[n](q,k,v,mask)
        print(n, {e.key[:55]: round(e.self_cpu_time_total/20/1000,3) for e in p.key_averages() if e.self_cpu_time_total/20/1000 > 0.05 and ("cpp" in e.key or "bmm" in e.key)})

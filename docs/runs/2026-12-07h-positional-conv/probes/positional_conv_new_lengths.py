import torch, time, torch.nn.functional as F, warnings, statistics, tempfile, os
warnings.simplefilter("ignore")
torch.set_num_threads(2)
torch.manual_seed(0)
from compress.methods.positional_conv import merged_weight
C,K,G=192,64,16
class M(torch.nn.Module):
    def __init__(s, kind, step=0):
        super().__init__(); s.kind=kind; s.step=step
        s.w=torch.nn.Parameter(torch.randn(C,C//G,K)*0.05); s.b=torch.nn.Parameter(torch.randn(C))
    def forward(s, h):
        x=h.transpose(1,2); T=x.shape[-1]
        if s.kind=="conv1d": return F.conv1d(x,s.w,s.b,padding=K//2,groups=G)
        extra=0
        if s.step:
            extra=(-T) % s.step + s.step
            x=F.pad(x,(0,extra))
        out=F.conv2d(x[:,:,None,:], merged_weight(s.w,G,2), s.b, padding=(0,K//2), groups=8)[:,:,0,:]
        return out.narrow(-1, 0, out.shape[-1]-extra) if s.step else out
d=tempfile.mkdtemp()
Tdim=torch.export.Dim("T", min=2, max=5000); Bdim=torch.export.Dim("B", min=1, max=64)
fs={}
for name,(kind,step) in {"conv1d":("conv1d",0),"cl":("cl",0),"cl pad32":("cl",32),"cl pad16":("cl",16)}.items():
    m=M(kind,step).eval(); torch.manual_seed(0); m.load_state_dict(M("conv1d").state_dict())
    with torch.no_grad():
        ep=torch.export.export(m,(torch.randn(8,100,C),),dynamic_shapes=({0:Bdim,1:Tdim},),strict=False)
        with torch._inductor.config.patch(freezing=True):
            p=torch._inductor.aoti_compile_and_package(ep, package_path=os.path.join(d,name.replace(" ","_")+".pt2"))
    fs[name]=torch._inductor.aoti_load_package(p)
with torch.inference_mode():
    h=torch.randn(3,77,C); r=fs["conv1d"](h)
    for n,f in fs.items(): print(n, "rel err %.2e" % ((f(h)-r).norm()/r.norm()).item())
    for f in fs.values(): f(torch.randn(8,100,C)); f(torch.randn(8,101,C))
    res={n:[] for n in fs}
    for T in range(260, 330):
        h=torch.randn(8,T,C)
        items=list(fs.items()); items=items if T%2 else items[::-1]
        for n,f in items:
            s=time.perf_counter(); f(h); first=time.perf_counter()-s
            s=time.perf_counter(); f(h); second=time.perf_counter()-s
            res[n].append((first*1000, second*1000))
    for n,v in res.items():
        print(n, "first-sight median %.2f mean %.2f max %.1f ms, warm %.2f ms" % (statistics.median(a for a,_ in v), statistics.mean(a for a,_ in v), max(a for a,_ in v), statistics.median(b for _,b in v)))

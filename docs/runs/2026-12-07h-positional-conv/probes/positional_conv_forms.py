import torch, time, torch.nn.functional as F, warnings, sys
warnings.simplefilter("ignore")
torch.set_num_threads(2)
torch.manual_seed(0)
C,K,G=192,64,16; Cg=C//G
w=torch.randn(C,Cg,K)*0.05; b=torch.randn(C)
def regroup(w,G,G2):
    C,Cg,K=w.shape; Cg2=C//G2; r=G//G2
    w2=torch.zeros(C,Cg2,K,dtype=w.dtype)
    for o in range(C):
        g=o//Cg; j=(g%r)*Cg
        w2[o,j:j+Cg]=w[o]
    return w2
def conv1d(h): return F.conv1d(h.transpose(1,2),w,b,padding=K//2,groups=G)
def mk(G2, dt):
    w4=regroup(w,G,G2)[:,:,None,:].contiguous(memory_format=torch.channels_last).to(dt); bb=b.to(dt)
    def f(h):
        x=h.to(dt).transpose(1,2)[:,:,None,:]
        return F.conv2d(x,w4,bb,padding=(0,K//2),groups=G2)[:,:,0,:].float()
    return f
fs={"conv1d": conv1d}
for G2 in (16,8,4): fs[f"cl{G2}"]=mk(G2,torch.float32)
for G2 in (16,8): fs[f"bf{G2}"]=mk(G2,torch.bfloat16)
cs={n:torch.compile(f,dynamic=True) for n,f in fs.items()}
with torch.inference_mode():
  h=torch.randn(8,250,C); ref=conv1d(h)
  for n,f in cs.items(): print(n, "err %.2e" % ((f(h)-ref).norm()/ref.norm()).item())
  for T in (250, 600):
    h=torch.randn(8,T,C)
    for f in cs.values(): f(h)
    ts={n:[] for n in cs}
    for r in range(15):
        for n,f in cs.items():
            s=time.perf_counter()
            for _ in range(4): f(h)
            ts[n].append((time.perf_counter()-s)/4*1000)
    print(T, "  ".join("%s %.2f" % (n, sorted(ts[n])[7]) for n in cs))

// The widget's styles. They live inside the shadow root: adopted as a
// constructed stylesheet, which a strict Content-Security-Policy
// (style-src 'self') allows, unlike an inline <style> element.

export const css = `
:host{all:initial!important;display:block!important;position:fixed!important;right:20px!important;bottom:20px!important;left:auto!important;top:auto!important;width:0!important;height:0!important;z-index:2147483647!important;visibility:visible!important;opacity:1!important;transform:none!important;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif!important;color:#1d2433!important;--c:#1f5fcc;--f:#fff}
*{box-sizing:border-box;font:inherit;color:inherit;margin:0;padding:0;letter-spacing:normal;text-transform:none}
[hidden]{display:none!important}
button{cursor:pointer;border:0;background:none;text-align:center}
:focus-visible{outline:2px solid var(--c)!important;outline-offset:2px}
.h :focus-visible,.l:focus-visible{outline-color:#fff!important;box-shadow:0 0 0 4px var(--c)}
svg{width:20px;height:20px;fill:currentColor;display:block}
.l{position:absolute;right:0;bottom:0;width:56px;height:56px;border-radius:50%;background:var(--c);color:var(--f);box-shadow:0 6px 20px rgba(16,24,40,.24);display:flex;align-items:center;justify-content:center;transition:transform .15s ease}
.l:hover{transform:scale(1.05)}
.l svg{width:26px;height:26px}
.b{position:absolute;top:-3px;right:-3px;min-width:20px;height:20px;padding:0 6px;border-radius:10px;background:#c81e1e;color:#fff;font-size:12px;font-weight:700;line-height:20px;box-shadow:0 0 0 2px #fff}
.p,.card{position:absolute;right:0;bottom:72px;background:#fff;box-shadow:0 16px 48px rgba(16,24,40,.22),0 2px 6px rgba(16,24,40,.08);animation:up .2s ease-out}
.p{width:min(380px,calc(100vw - 40px));height:min(620px,calc(100vh - 112px));border-radius:18px;display:flex;flex-direction:column;overflow:hidden}
@keyframes up{from{opacity:0;transform:translateY(10px)}}
.h{background:var(--c);color:var(--f);padding:18px 14px 18px 20px;display:flex;gap:8px;align-items:flex-start}
.h>div{flex:1;min-width:0}
.h h2{font-size:17px;font-weight:650;line-height:1.3}
.h p{font-size:13px;opacity:.92;margin-top:2px}
.ib{width:34px;height:34px;border-radius:10px;display:flex;align-items:center;justify-content:center;flex:none}
.ib:hover{background:rgba(255,255,255,.16)}
.s{flex:1;overflow-y:auto;scrollbar-width:thin;padding:18px 16px;display:flex;flex-direction:column;gap:6px;background:#f7f8fa}
.m{max-width:82%;padding:9px 13px;border-radius:16px 16px 16px 5px;white-space:pre-wrap;overflow-wrap:anywhere;background:#fff;border:1px solid #e4e7ec;align-self:flex-start;box-shadow:0 1px 1px rgba(16,24,40,.04)}
.hi{align-self:flex-start;max-width:82%;padding:9px 13px;border-radius:16px 16px 16px 5px;background:#fff;border:1px solid #e4e7ec;margin-bottom:6px}
.m.v{align-self:flex-end;background:var(--c);color:var(--f);border-color:transparent;border-radius:16px 16px 5px 16px}
.m.q{opacity:.65}
.n{font-size:12px;color:#5b6475;margin:8px 4px 0}
.n.v{align-self:flex-end}
.rc{font-size:12px;color:#5b6475;margin:0 4px;align-self:flex-end}
.st{align-self:center;font-size:12.5px;color:#3e4758;background:#eaedf2;padding:6px 12px;border-radius:999px;text-align:center;margin:6px 0}
.ty{align-self:flex-start;display:flex;gap:4px;padding:12px 14px;background:#fff;border:1px solid #e4e7ec;border-radius:16px 16px 16px 5px}
.ty i{width:6px;height:6px;border-radius:50%;background:#8a93a3;animation:bl 1.2s infinite}
.ty i:nth-child(2){animation-delay:.2s}.ty i:nth-child(3){animation-delay:.4s}
@keyframes bl{50%{opacity:.3;transform:translateY(-2px)}}
.fb{align-self:stretch;background:#fff;border:1px solid #e4e7ec;border-radius:14px;padding:14px;margin-top:8px;text-align:center}
.fb p{font-weight:600;margin-bottom:10px}
.row{display:flex;gap:8px;justify-content:flex-end}
.fb .row{justify-content:center}
.pri,.sec{border-radius:10px;padding:8px 16px;font-weight:600;font-size:14px;min-height:38px}
.pri{background:var(--c);color:var(--f)}
.sec{background:#fff;border:1px solid #d0d5dd;color:#344054}
.sec:hover{background:#f2f4f7}
.o{font-size:12.5px;color:#8a2c0d;background:#fff4ed;padding:7px 16px;border-top:1px solid #fbe3d3}
.c{border-top:1px solid #e4e7ec;padding:10px 12px;display:flex;gap:8px;align-items:flex-end;background:#fff}
textarea,input{font-weight:400;color:#1d2433;border:1px solid #d0d5dd;border-radius:12px;padding:9px 12px;line-height:20px;background:#fff;width:100%;outline:0}
textarea{overflow-y:hidden}
textarea:focus,input:focus{border-color:var(--c)}
.c textarea{flex:1;resize:none;height:40px;max-height:120px}
.c .pri{height:40px;flex:none}
button:disabled{opacity:.5;cursor:default}
.f{display:flex;flex-direction:column;gap:12px;padding:20px;overflow-y:auto;flex:1}
.f h3{font-size:16px;font-weight:650}
.f p{color:#475467}
label{font-size:13px;font-weight:600;color:#344054;display:flex;flex-direction:column;gap:5px}
.f textarea{min-height:110px;resize:vertical}
dl{display:grid;grid-template-columns:auto 1fr;gap:8px 14px;font-size:13px}
dt{color:#5b6475;font-weight:600}
dd{overflow-wrap:anywhere;white-space:pre-line}
.ft{font-size:11.5px;color:#5b6475;text-align:center;padding:6px;background:#fff}
.card{width:min(320px,calc(100vw - 40px));border-radius:16px;padding:16px 16px 14px}
.card .t{display:flex;gap:12px;align-items:flex-start;margin-bottom:14px}
.av{width:36px;height:36px;border-radius:50%;background:var(--c);color:var(--f);display:flex;align-items:center;justify-content:center;flex:none}
.card p{font-size:14.5px;line-height:1.45;padding-top:1px}
@media (max-width:480px){.p{position:fixed;inset:0;width:auto;height:auto;border-radius:0}textarea,input{font-size:16px}:host([data-open]) .l{display:none}}
@media (prefers-reduced-motion:reduce){*{animation:none!important;transition:none!important}}
`;

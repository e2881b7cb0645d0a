"""The report page: its style, its small script (hover values, latent thumbnails) and the frame
around the sections. Everything is inline: the file opens offline, with nothing fetched."""
from __future__ import annotations

from html import escape
from typing import Sequence, Tuple

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1180px;color:#222;
 padding:0 16px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:3px;margin-top:32px}
h3{font-size:14px;margin:14px 0 6px}
table{border-collapse:collapse;margin:6px 0}th,td{border:1px solid #e3e3e3;padding:3px 8px;text-align:left;
 vertical-align:top}th{background:#fafafa;font-weight:600}td.num{font-variant-numeric:tabular-nums;text-align:right}
tr.differs th{color:#b00}pre{background:#f6f6f6;padding:8px;overflow-x:auto;white-space:pre-wrap}
.why{color:#8a5a00;margin:4px 0}.note{color:#555;font-size:13px}.banner{background:#fff4d6;border:1px solid #e8c66a;
 padding:8px 12px;font-weight:600}
.panels,.pictures{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}figcaption{font-size:13px;color:#444}
.pictures img{max-width:560px;image-rendering:pixelated}.same img{image-rendering:pixelated}
svg text{font-size:11px;fill:#444}svg .grid{stroke:#eee}svg .event{stroke-dasharray:2 3;stroke-width:1.5}
svg .event-label{font-size:10px}svg circle[data-tip]:hover,svg .event:hover{stroke:#000;stroke-width:1.5}
.map{border:1px solid #ddd;background:#fff}.map circle{opacity:.75}.map circle:hover{stroke:#000;opacity:1}
.key{margin-right:10px;font-size:13px}
#tip{position:fixed;pointer-events:none;background:#fff;border:1px solid #999;padding:4px 6px;font-size:12px;
 box-shadow:0 2px 6px rgba(0,0,0,.2);display:none;z-index:9}
#tip img{display:block;image-rendering:pixelated;margin-top:4px}
"""

# One tooltip for the page: a curve point or event shows its data-tip; a latent dot shows its example and
# reconstruction, cropped from the map's sprite onto a canvas.
SCRIPT = """
(function(){
var tip=document.getElementById('tip'),text=document.getElementById('tip-text'),img=document.getElementById('tip-img');
function place(e){tip.style.left=(e.clientX+14)+'px';tip.style.top=(e.clientY+14)+'px';}
function thumb(dot){
  var svg=dot.ownerSVGElement,sprite=document.getElementById(svg.getAttribute('data-sprite'));
  if(!sprite||!dot.hasAttribute('data-t'))return '';
  var w=+sprite.dataset.w,h=+sprite.dataset.h,cols=+sprite.dataset.cols,k=+dot.getAttribute('data-t');
  var c=document.createElement('canvas');c.width=2*w;c.height=h;
  c.getContext('2d').drawImage(sprite,(k%cols)*2*w,Math.floor(k/cols)*h,2*w,h,0,0,2*w,h);
  return c.toDataURL('image/png');
}
document.addEventListener('mouseover',function(e){
  var t=e.target;
  if(t.hasAttribute&&t.hasAttribute('data-tip')){text.textContent=t.getAttribute('data-tip');img.removeAttribute('src');
    img.style.display='none';}
  else if(t.hasAttribute&&t.hasAttribute('data-i')){
    var src=thumb(t),s=t.ownerSVGElement,sp=document.getElementById(s.getAttribute('data-sprite'));
    text.textContent='example '+t.getAttribute('data-i')+' \\u00b7 class '+t.getAttribute('data-c')+
      (src?' \\u00b7 left: the example, right: its reconstruction':(sp?' \\u00b7 no thumbnail (not in the sample)':''));
    if(src){img.src=src;img.style.display='block';
      img.style.width=2*sp.dataset.w*Math.max(1,Math.round(96/sp.dataset.h))+'px';}
    else{img.removeAttribute('src');img.style.display='none';}}
  else return;
  tip.style.display='block';place(e);
});
document.addEventListener('mousemove',function(e){if(tip.style.display==='block')place(e);});
document.addEventListener('mouseout',function(e){var t=e.target;
  if(t.hasAttribute&&(t.hasAttribute('data-tip')||t.hasAttribute('data-i')))tip.style.display='none';});
})();
"""


def page(title: str, banner: str, sections: Sequence[Tuple[str, str]], footer: str) -> str:
    """The whole HTML document: ``sections`` are (heading, body HTML)."""
    body = "".join(f"<h2>{escape(h)}</h2>{html}" for h, html in sections)
    banner_html = f'<p class="banner">{escape(banner)}</p>' if banner else ""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{STYLE}</style></head>'
            f"<body><h1>{escape(title)}</h1>{banner_html}{body}"
            f'<p class="note">{escape(footer)}</p>'
            f'<div id="tip"><span id="tip-text"></span><img id="tip-img" alt="example and reconstruction"></div>'
            f"<script>{SCRIPT}</script></body></html>")
